"""L1Out, the leave-one-out upper bound (Poole et al., 2019), with the fitted q of CLUB.

bound = mean_i [log q(y_i | x_i) - log mean_{j != i} q(y_i | x_j)], clamped at 0. It
compares every pair, so it is computed on at most ``L1OUT_MAX`` random rows per step.
"""

from __future__ import annotations

import torch

from searec.separation.distancing.base import register_distancing
from searec.separation.distancing.variational import (
    GaussianQ,
    VariationalEstimator,
    pairwise_log_density,
)

L1OUT_MAX = 512


def l1out_bound(q: GaussianQ, x: torch.Tensor, y: torch.Tensor, clamp: bool = True,
                max_rows: int = L1OUT_MAX, copy: int | None = None) -> torch.Tensor:
    """Leave-one-out estimate of I(x; y) with q's parameters held fixed (no grad to q)."""
    if len(x) > max_rows:
        keep = torch.randperm(len(x), device=x.device)[:max_rows]
        x, y = x[keep], y[keep]
    n = len(x)
    mu, logvar = q(x, copy=copy, detach=True)
    pair = pairwise_log_density(mu, logvar, y)
    own = torch.diagonal(pair)
    others = pair.masked_fill(torch.eye(n, dtype=torch.bool, device=x.device), -torch.inf)
    bound = (own - (torch.logsumexp(others, dim=1) - torch.log(torch.tensor(n - 1.0)))).mean()
    return bound.clamp(min=0.0) if clamp else bound


@register_distancing
class L1Out(VariationalEstimator):
    """Leave-one-out upper bound with the fitted Gaussian q, clamped at 0."""

    name = "l1out"
    estimate = staticmethod(l1out_bound)
