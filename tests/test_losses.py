"""Shared losses: the indexed BPR against the gathered one it replaces."""

import pytest
import torch
import torch.nn.functional as F

from searec.losses import bpr_dot_loss, bpr_indexed_loss


@pytest.mark.parametrize("chunk_elements", [1, 7, 1 << 22])
def test_indexed_bpr_equals_bpr_on_gathered_rows(chunk_elements):
    # repeated users and items: their gradients must add up, across chunks too
    torch.manual_seed(0)
    users_t = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    items_t = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    u, p, n = torch.randint(0, 7, (40,)), torch.randint(0, 9, (40,)), torch.randint(0, 9, (40,))
    got = bpr_indexed_loss(users_t, items_t, u, p, n, chunk_elements=chunk_elements)
    want = bpr_dot_loss(users_t[u], items_t[p], items_t[n])
    torch.testing.assert_close(got, want)
    for a, b in zip(torch.autograd.grad(got, (users_t, items_t)),
                    torch.autograd.grad(want, (users_t, items_t)), strict=True):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(
        lambda a, b: bpr_indexed_loss(a, b, u, p, n, chunk_elements=chunk_elements),
        (users_t, items_t))


def test_indexed_bpr_hand_computed_and_one_sided_gradients():
    users_t = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    items_t = torch.tensor([[1.0, 1.0], [0.0, 0.0]], requires_grad=True)
    loss = bpr_indexed_loss(users_t, items_t, torch.tensor([0, 1]), torch.tensor([0, 0]),
                            torch.tensor([1, 1]))
    # score differences 1 and 2: loss = mean(log(1 + e^-1), log(1 + e^-2))
    want = torch.nn.functional.softplus(-torch.tensor([1.0, 2.0])).mean()
    torch.testing.assert_close(loss, want)
    (grad,) = torch.autograd.grad(loss, items_t)  # the user table needs no gradient
    s1, s2 = torch.sigmoid(torch.tensor(-1.0)), torch.sigmoid(torch.tensor(-2.0))
    pos_row = -(s1 * torch.tensor([1.0, 0.0]) + s2 * torch.tensor([0.0, 2.0])) / 2
    torch.testing.assert_close(grad, torch.stack([pos_row, -pos_row]))


def test_indexed_bpr_refuses_tables_of_different_width():
    with pytest.raises(ValueError, match="differ in width: 3 vs 4"):
        bpr_indexed_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0]),
                         torch.tensor([0]), torch.tensor([1]))


@pytest.mark.parametrize("chunk_elements", [1, 7, 1 << 22])
def test_weighted_indexed_bpr_equals_bpr_on_formed_weighted_rows(chunk_elements):
    # users read as scale_blocks(table, weights): column block b of row n times w[n, b]
    from searec.ops import scale_blocks

    torch.manual_seed(1)
    users_t = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    items_t = torch.randn(8, 6, dtype=torch.float64, requires_grad=True)
    u, p, n = torch.randint(0, 6, (30,)), torch.randint(0, 8, (30,)), torch.randint(0, 8, (30,))
    got = bpr_indexed_loss(users_t, items_t, u, p, n, chunk_elements=chunk_elements,
                           user_weights=weights)
    formed = scale_blocks(users_t, weights)
    want = bpr_dot_loss(formed[u], items_t[p], items_t[n])
    torch.testing.assert_close(got, want)
    inputs = (users_t, items_t, weights)
    for a, b in zip(torch.autograd.grad(got, inputs), torch.autograd.grad(want, inputs),
                    strict=True):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(
        lambda a, b, w: bpr_indexed_loss(a, b, u, p, n, chunk_elements=chunk_elements,
                                         user_weights=w), inputs)


def test_weighted_indexed_bpr_hand_computed():
    # user 0's row [1, 2 | 3, 4] with weights [2, -1] reads as [2, 4, -3, -4]
    users_t = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    weights = torch.tensor([[2.0, -1.0]])
    items_t = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    loss = bpr_indexed_loss(users_t, items_t, torch.tensor([0]), torch.tensor([0]),
                            torch.tensor([1]), user_weights=weights)
    # score difference 2 - 4 = -2
    torch.testing.assert_close(loss, torch.nn.functional.softplus(torch.tensor(2.0)))


def test_weighted_indexed_bpr_refuses_weights_that_do_not_fit():
    with pytest.raises(ValueError, match=r"user_weights must be \(users, B\)"):
        bpr_indexed_loss(torch.zeros(2, 4), torch.zeros(2, 4), torch.tensor([0]),
                         torch.tensor([0]), torch.tensor([1]), user_weights=torch.zeros(2, 3))


def test_indexed_bpr_on_tables_of_two_precisions():
    # a bf16 autocast output beside a float32 table: scored and summed in float32, each
    # gradient rounded once into its own table's precision
    torch.manual_seed(2)
    users_t = torch.randn(5, 4, requires_grad=True)
    items_t = torch.randn(6, 4).bfloat16().requires_grad_()
    u, p, n = torch.randint(0, 5, (12,)), torch.randint(0, 6, (12,)), torch.randint(0, 6, (12,))
    got = bpr_indexed_loss(users_t, items_t, u, p, n)
    assert got.dtype == torch.float32
    exact_users = users_t.detach().double().requires_grad_()
    exact_items = items_t.detach().double().requires_grad_()
    want = bpr_dot_loss(exact_users[u], exact_items[p], exact_items[n])
    torch.testing.assert_close(got.double(), want)
    grad_users, grad_items = torch.autograd.grad(got, (users_t, items_t))
    assert grad_users.dtype == torch.float32 and grad_items.dtype == torch.bfloat16
    want_users, want_items = torch.autograd.grad(want, (exact_users, exact_items))
    torch.testing.assert_close(grad_users.double(), want_users)
    # within one bf16 rounding of the exact gradient (8 bits of mantissa)
    torch.testing.assert_close(grad_items.double(), want_items, rtol=2**-8, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.2, 0.01])
def test_one_way_infonce_is_the_mean_diagonal_log_softmax(temperature):
    """Value and gradients (float64) equal -mean(diag(log_softmax(cos / tau))), with
    and without the max-shift (1 / tau above the exp-safe bound)."""
    from searec.losses import one_way_infonce

    g = torch.Generator().manual_seed(0)
    anchor = torch.randn(50, 8, generator=g, dtype=torch.float64)
    other = anchor + torch.randn(50, 8, generator=g, dtype=torch.float64)
    results = []
    for fn in (one_way_infonce, None):
        a, o = anchor.clone().requires_grad_(), other.clone().requires_grad_()
        if fn is None:
            logits = F.normalize(a, dim=1) @ F.normalize(o, dim=1).T / temperature
            value = -torch.diagonal(F.log_softmax(logits, dim=1)).mean()
        else:
            value = fn(a, o, temperature)
        value.backward()
        results.append((value.detach(), a.grad, o.grad))
    for ours, reference in zip(*results, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-12)
