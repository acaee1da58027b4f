"""Shared losses: the indexed BPR against the gathered one it replaces."""

import pytest
import torch

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
