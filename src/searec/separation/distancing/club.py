"""CLUB-sample (Cheng et al., 2020): an upper bound on I(x; y) from a fitted q(y | x).

bound = mean_i [log q(y_i | x_i) - log q(y_perm(i) | x_i)], clamped at 0. (The authors'
code also halves it, a constant factor: the ``reference`` preset halves the loss weight
instead.) q is fitted to the very pairs the bound is evaluated on, one q per modality.
"""

from __future__ import annotations

import torch

from searec.separation.distancing.base import register_distancing
from searec.separation.distancing.variational import (
    GaussianQ,
    VariationalEstimator,
    gaussian_log_ratio_terms,
)


def club_sample_bound(
    q: GaussianQ, x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor | None = None,
    clamp: bool = True, copy: int | None = None,
) -> torch.Tensor:
    """CLUB-sample estimate of I(x; y) with q's parameters held fixed (no grad to q).

    Stacked (copies, n, d) inputs give one estimate per copy; the negative pairs then
    use one random permutation of the rows for every copy."""
    mu, logvar = q(x, copy=copy, detach=True)
    if perm is None:
        perm = torch.randperm(y.shape[-2], device=y.device)
    positive = gaussian_log_ratio_terms(mu, logvar, y)
    negative = gaussian_log_ratio_terms(mu, logvar, y[..., perm, :])
    bound = (positive - negative).mean(dim=-1)
    return bound.clamp(min=0.0) if clamp else bound


@register_distancing
class CLUB(VariationalEstimator):
    """CLUB-sample upper bound with a fitted Gaussian q, clamped at 0."""

    name = "club"
    estimate = staticmethod(club_sample_bound)

    def bounds(self, x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]
               ) -> dict[str, torch.Tensor]:
        if self.params.q_pairs != "within":
            return super().bounds(x, y)
        # every modality's copy of q in one batched product (one permutation for all)
        stacked = club_sample_bound(self.q, torch.stack([x[m] for m in self.names]),
                                    torch.stack([y[m] for m in self.names]), clamp=False)
        return dict(zip(self.names, stacked.unbind(), strict=True))
