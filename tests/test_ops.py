"""searec.ops against the torch functions they stand in for."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from searec.ops import unit_rows


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
