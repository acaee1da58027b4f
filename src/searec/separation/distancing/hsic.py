"""hsic: normalised HSIC with Gaussian kernels (Gretton et al., 2005), a kernel measure of
any dependence between a modality's generic and unique parts, with nothing to fit.

    value = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),  K_ij = exp(-||x_i - x_j||^2 / (2 s_x^2)),

K the Gaussian kernel matrix of the generic parts x (L likewise of the unique parts y),
2 s_x^2 the mean squared distance between two rows of the batch (held constant, so the
value does not depend on the parts' scale), HSIC the unbiased estimator. About 0 for
independent parts, 1 for identical ones; for characteristic kernels the population
HSIC is 0 exactly when the parts are independent, so unlike a linear
decorrelation it also sees nonlinear dependence, and unlike CLUB there is no network q
that has to keep up with the encoder and no clamp at 0: it acts at every step.

It compares the parts themselves, not Distancing's learned linear transforms of them: a
transform trained to lower this value could hide the dependence by dropping the
directions that carry it, without changing the parts the backbone uses.
"""

from __future__ import annotations

import torch
from pydantic import Field

from searec.separation.distancing.base import (
    DistancingEstimator,
    DistancingParams,
    register_distancing,
)


class HSICParams(DistancingParams):
    """Settings of hsic."""

    max_rows: int = Field(
        512, ge=4, description="Rows per value: a random subset of the step's items when "
        "there are more. Its cost is some forty n x n element-wise passes per modality "
        "(forward and backward), as much as the rest of a TikTok step at n = 1024; the "
        "estimate's bias is O(1/n).")


def _gaussian_kernel(z: torch.Tensor) -> torch.Tensor:
    """K_ij = exp(-||z_i - z_j||^2 / (2 s^2)), 2 s^2 = the mean squared distance between
    two rows (= 2 x the total variance: O(n d), where a median over the n^2 distances
    cost more than the rest of the kernel)."""
    sq = (z * z).sum(dim=1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0)
    with torch.no_grad():
        mean_sq = 2.0 * z.var(dim=0, unbiased=False).sum() if len(z) > 1 else z.new_ones(())
    return torch.exp(-dist / mean_sq.clamp_min(1e-12))


def unbiased_hsic(k: torch.Tensor, l_: torch.Tensor) -> torch.Tensor:
    """The unbiased HSIC estimator of Song et al. (2012) from two Gaussian kernel matrices
    (n >= 4), in float64.

    The plain estimate tr(K H L H) / n^2 is biased upwards by an amount that grows with
    the parts' dimension: at 64 dimensions and n = 512 independent Gaussian rows its
    normalised value is 0.27 (0.04 at n = 4096), and a loss built on it could lower that
    bias by reshaping each part's own spectrum rather than by making the parts independent.
    The estimator needs K and L with zero diagonals; a Gaussian kernel's diagonal is 1, so
    that is done on the sums (no n x n pass): sum(K~ * L~) = sum(K * L) - n and
    K~ 1 = K 1 - 1. The sums are taken in the kernels' precision and combined in float64,
    where their large terms nearly cancel.
    """
    n = k.shape[0]
    rk, rl = k.sum(dim=1) - 1.0, l_.sum(dim=1) - 1.0
    trace = (k * l_).sum().double() - n
    return (trace + rk.sum().double() * rl.sum().double() / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (rk * rl).sum().double()) / (n * (n - 3))


def normalised_hsic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """HSIC(x, y) / sqrt(HSIC(x, x) HSIC(y, y)) with unbiased HSIC estimates, from paired
    rows of x and y: about 0 for independent parts at any n and dimension, 1 for y = x;
    0 below 4 rows."""
    if len(x) < 4:
        return (x.sum() + y.sum()) * 0.0
    k, l_ = _gaussian_kernel(x), _gaussian_kernel(y)
    norm = (unbiased_hsic(k, k) * unbiased_hsic(l_, l_)).clamp_min(1e-24).sqrt()
    return (unbiased_hsic(k, l_) / norm).clamp(-1.0, 1.0).to(x.dtype)


@register_distancing
class HSIC(DistancingEstimator):
    """Normalised unbiased HSIC between the generic and unique parts (a proxy, about 0
    when they are independent; an unbiased estimate can dip below 0)."""

    name = "hsic"
    Params = HSICParams
    params: HSICParams
    kind = "proxy"
    value_range = (-1.0, 1.0)
    transformed = False

    def forward(self, x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
        first = next(iter(x.values()))
        rows: torch.Tensor | slice = (
            torch.randperm(len(first), device=first.device)[: self.params.max_rows]
            if len(first) > self.params.max_rows else slice(None))
        return {m: normalised_hsic(x[m][rows], y[m][rows]) for m in self.names}
