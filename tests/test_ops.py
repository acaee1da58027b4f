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

