"""searec.ops against the torch functions they stand in for."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from searec.ops import _ScaleBlocks, _UnitRows, scale_blocks, unit_rows, unit_rows_blocks


def test_unit_rows_is_f_normalize_in_value_and_gradient():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 7, generator=gen, dtype=torch.float64) * 3.0
    x[4] = 0.0  # an all-zero row: 0 out, as F.normalize gives
    x[5] = 1e-8  # a tiny one
    weights = torch.randn(50, 7, generator=gen, dtype=torch.float64)
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    (F.normalize(a, dim=1) * weights).sum().backward()
    (unit_rows(b) * weights).sum().backward()
    torch.testing.assert_close(unit_rows(x), F.normalize(x, dim=1))
    assert unit_rows(x)[4].abs().sum() == 0
    torch.testing.assert_close(b.grad, a.grad)



def test_unit_rows_of_parts_is_f_normalize_of_their_concatenation():
    gen = torch.Generator().manual_seed(1)
    top = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    bottom = torch.randn(9, 5, generator=gen, dtype=torch.float64) * 4.0
    bottom[2] = 0.0  # clamped: gradient g / eps, as F.normalize's
    weights = torch.randn(15, 5, generator=gen, dtype=torch.float64)
    leaves = [t.clone().requires_grad_(True) for t in (top, bottom, top, bottom)]
    (F.normalize(torch.cat(leaves[:2]), dim=1) * weights).sum().backward()
    out = unit_rows(leaves[2:])
    (out * weights).sum().backward()
    torch.testing.assert_close(out, F.normalize(torch.cat([top, bottom]), dim=1))
    torch.testing.assert_close(leaves[2].grad, leaves[0].grad)
    torch.testing.assert_close(leaves[3].grad, leaves[1].grad)
    assert leaves[3].grad[2].abs().max() > 1e6  # the clamped row's 1 / eps scale
    # the input is left as it was
    torch.testing.assert_close(leaves[3].detach(), bottom)


@pytest.mark.parametrize("chunk_rows", [None, 4])
def test_unit_rows_blocks_is_each_blocks_unit_rows_side_by_side(chunk_rows, monkeypatch):
    if chunk_rows:  # the backward pass rebuilds the rows a chunk at a time
        monkeypatch.setattr(_UnitRows, "ROWS", chunk_rows)
    gen = torch.Generator().manual_seed(2)
    shapes = [(6, 5), (9, 5)]
    parts = [[torch.randn(*s, generator=gen, dtype=torch.float64) * (b + 1) for s in shapes]
             for b in range(3)]
    parts[1][1][4] = 0.0  # a clamped row in one block only
    weights = torch.randn(15, 15, generator=gen, dtype=torch.float64)
    apart = [[p.clone().requires_grad_(True) for p in block] for block in parts]
    together = [[p.clone().requires_grad_(True) for p in block] for block in parts]
    expected = torch.cat([unit_rows(block) for block in apart], dim=1)
    (expected * weights).sum().backward()
    out = unit_rows_blocks(together)
    (out * weights).sum().backward()
    torch.testing.assert_close(out, expected)
    assert out[6 + 4, 5:10].abs().sum() == 0 and out[6 + 4, :5].abs().sum() > 0
    for block_a, block_b in zip(apart, together, strict=True):
        for a, b in zip(block_a, block_b, strict=True):
            torch.testing.assert_close(b.grad, a.grad)
            assert b.grad.is_contiguous()  # a table's gradient is used as it is
    torch.testing.assert_close(together[1][1].detach(), parts[1][1])  # inputs untouched


def test_unit_rows_blocks_promotes_mixed_precision_like_cat():
    # under autocast an item MLP gives bfloat16 beside a float32 user table
    users = torch.randn(3, 4)
    items = torch.randn(2, 4).bfloat16()
    leaves = [users.requires_grad_(True), items.requires_grad_(True)]
    out = unit_rows_blocks([leaves])
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, F.normalize(torch.cat([users, items.float()]), dim=1))
    weights = torch.randn(5, 4)
    (out * weights).sum().backward()
    ref = [users.detach().clone().requires_grad_(True),
           items.detach().float().requires_grad_(True)]
    (F.normalize(torch.cat(ref), dim=1) * weights).sum().backward()
    torch.testing.assert_close(leaves[0].grad, ref[0].grad)
    assert leaves[1].grad.dtype == torch.bfloat16  # each part's gradient in its own dtype
    torch.testing.assert_close(leaves[1].grad, ref[1].grad.bfloat16())


def test_unit_rows_blocks_needs_blocks_of_the_same_layout():
    a, b = torch.ones(3, 4), torch.ones(2, 4)
    with pytest.raises(ValueError, match="same row parts and width"):
        unit_rows_blocks([[a, b], [a, torch.ones(2, 5)]])
    with pytest.raises(ValueError, match="same row parts and width"):
        unit_rows_blocks([[a, b], [b, a]])
    with pytest.raises(ValueError, match="at least one block"):
        unit_rows_blocks([])


@pytest.mark.parametrize("chunk_rows", [None, 3])
def test_scale_blocks_is_the_broadcast_product(chunk_rows, monkeypatch):
    if chunk_rows:
        monkeypatch.setattr(_ScaleBlocks, "ROWS", chunk_rows)
    gen = torch.Generator().manual_seed(3)
    values = torch.randn(7, 3 * 4, generator=gen, dtype=torch.float64)
    weights = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    upstream = torch.randn(7, 12, generator=gen, dtype=torch.float64)
    a = [values.clone().requires_grad_(True), weights.clone().requires_grad_(True)]
    b = [values.clone().requires_grad_(True), weights.clone().requires_grad_(True)]
    expected = (a[0].view(7, 3, 4) * a[1][:, :, None]).view(7, 12)
    (expected * upstream).sum().backward()
    out = scale_blocks(*b)
    (out * upstream).sum().backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(b[0].grad, a[0].grad)
    torch.testing.assert_close(b[1].grad, a[1].grad)
    assert torch.autograd.gradcheck(scale_blocks, (values[:3, :6].clone().requires_grad_(True),
                                                   weights[:3, :2].clone().requires_grad_(True)))
    with pytest.raises(ValueError, match="values \\(N, B \\* d\\) and weights \\(N, B\\)"):
        scale_blocks(values, weights[:5])
