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
        "there are more. Its cost grows as n^2 (about 27 n x n passes per modality, "
        "forward and backward); the estimate's bias is O(1/n).")


def _constants(n: int) -> tuple[float, float, float]:
    """(1 / (n (n - 3)), 1 / ((n - 1) (n - 2)), 2 / (n - 2)): the unbiased estimator's."""
    return 1.0 / (n * (n - 3)), 1.0 / ((n - 1) * (n - 2)), 2.0 / (n - 2)


def _unbiased_from_sums(n: int, sum_kl: torch.Tensor, sum_rk: torch.Tensor,
                        sum_rl: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
    """The unbiased HSIC estimator of Song et al. (2012) for two Gaussian kernel matrices
    K, L (n >= 4), from sum(K * L), the sums of rk = K 1 - 1 and rl = L 1 - 1, and
    sum(rk * rl); in float64.

    The plain estimate tr(K H L H) / n^2 is biased upwards by an amount that grows with
    the parts' dimension: at 64 dimensions and n = 512 independent Gaussian rows its
    normalised value is 0.27 (0.04 at n = 4096), and a loss built on it could lower that
    bias by reshaping each part's own spectrum rather than by making the parts independent.
    The estimator needs K and L with zero diagonals; a Gaussian kernel's diagonal is 1, so
    that is done on the sums (no n x n pass): sum(K~ * L~) = sum(K * L) - n and
    K~ 1 = K 1 - 1. The sums are taken in the kernels' precision and combined in float64,
    where their large terms nearly cancel."""
    scale, alpha, beta = _constants(n)
    return (sum_kl.double() - n + sum_rk.double() * sum_rl.double() * alpha
            - beta * cross.double()) * scale


def _kernel(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """K_ij = exp(-||z_i - z_j||^2 / (2 s^2)) in five n x n passes, and 2 s^2, held
    constant (no gradient): the mean squared distance between two rows, = 2 x the total
    variance (O(n d), where a median over the n^2 distances cost more than the rest of
    the kernel)."""
    sq = (z * z).sum(dim=1)
    centred = (z - z.mean(dim=0)).view(-1)  # 2 x total variance; z.var(dim=0) took 5x longer
    mean_sq = (2.0 * torch.dot(centred, centred) / len(z)).clamp_min(1e-12)
    dist = torch.addmm(sq[:, None], z, z.T, alpha=-2.0).add_(sq[None, :])
    return dist.clamp_min_(0.0).div_(-mean_sq).exp_(), mean_sq


class _NormalisedHSIC(torch.autograd.Function):
    """Normalised unbiased HSIC of paired rows (x, y) with a hand-written backward.

    Autograd of the composition (two kernels, three unbiased estimates, the norm, the
    clamps) runs about forty n x n passes per modality; written out, the gradient with
    respect to K is K * (a L + b K + c - r_i) for scalars a, b, c and a vector r, so
    forward and backward take about 27 (docs/performance.md). At least float32 inside,
    autocast off, whatever the inputs' precision (the n x n sums nearly cancel); no value
    leaves the device (no sync)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n = x.shape[0]
        ctx.input_dtypes = (x.dtype, y.dtype)
        x, y = _wide(x), _wide(y)
        with torch.autocast(x.device.type, enabled=False):
            k, s_k = _kernel(x)
            l_, s_l = _kernel(y)
            rk, rl = k.sum(dim=1) - 1.0, l_.sum(dim=1) - 1.0
            # sum(A * B) as one pass, without the n x n product
            sum_kl = torch.dot(k.view(-1), l_.view(-1)).double()
            sum_kk = torch.dot(k.view(-1), k.view(-1)).double()
            sum_ll = torch.dot(l_.view(-1), l_.view(-1)).double()
        sum_rk, sum_rl = rk.sum().double(), rl.sum().double()
        h_kl = _unbiased_from_sums(n, sum_kl, sum_rk, sum_rl, (rk * rl).sum())
        h_kk = _unbiased_from_sums(n, sum_kk, sum_rk, sum_rk, (rk * rk).sum())
        h_ll = _unbiased_from_sums(n, sum_ll, sum_rl, sum_rl, (rl * rl).sum())
        product = h_kk * h_ll
        norm = product.clamp_min(1e-24).sqrt()
        raw = h_kl / norm
        # d value / d h_kl, h_kk, h_ll: zero outside clamp(-1, 1) (ends included, as
        # torch's clamp) and, for h_kk and h_ll, where the norm's floor holds
        inside = ((raw >= -1.0) & (raw <= 1.0)).double()
        live = (product >= 1e-24).double()
        ctx.coefficients = (inside / norm, -inside * live * h_kl * h_ll / (2.0 * norm ** 3),
                            -inside * live * h_kl * h_kk / (2.0 * norm ** 3),
                            sum_rk, sum_rl, s_k, s_l)
        ctx.save_for_backward(x, y, k, l_, rk, rl)
        return raw.clamp(-1.0, 1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor  # type: ignore[override]
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, y, k, l_, rk, rl = ctx.saved_tensors
        a_kl, a_kk, a_ll, sum_rk, sum_rl, s_k, s_l = ctx.coefficients
        scale, alpha, beta = _constants(x.shape[0])
        g = grad.double() * scale
        a_kl, a_kk, a_ll = g * a_kl, g * a_kk, g * a_ll
        # d h(K, L) / d K_ij = (L_ij + alpha sum(rl) - beta rl_i) / (n (n - 3)) (i != j:
        # the diagonal's distance has no gradient); h(K, K) has twice that with K for L
        grad_x = grad_y = None
        with torch.autocast(x.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                grad_x = _through_kernel(
                    x, k, s_k, l_, a_kl, 2.0 * a_kk,
                    alpha * (a_kl * sum_rl + 2.0 * a_kk * sum_rk),
                    beta * (a_kl * rl + 2.0 * a_kk * rk))
            if ctx.needs_input_grad[1]:
                grad_y = _through_kernel(
                    y, l_, s_l, k, a_kl, 2.0 * a_ll,
                    alpha * (a_kl * sum_rk + 2.0 * a_ll * sum_rl),
                    beta * (a_kl * rk + 2.0 * a_ll * rl))
        return (None if grad_x is None else grad_x.to(ctx.input_dtypes[0]),
                None if grad_y is None else grad_y.to(ctx.input_dtypes[1]))


def _wide(z: torch.Tensor) -> torch.Tensor:
    """z in float32, or wider if it is (float64 stays float64)."""
    return z.to(torch.promote_types(z.dtype, torch.float32))


def _through_kernel(z: torch.Tensor, kernel: torch.Tensor, mean_sq: torch.Tensor,
                    other: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                    r: torch.Tensor) -> torch.Tensor:
    """d/dz from d/dK_ij = a other_ij + b K_ij + c - r_i, through
    K = exp(-D / s), D_ij = |z_i|^2 + |z_j|^2 - 2 z_i.z_j. (Autograd of the clamp at D = 0
    would also zero the few entries where rounding makes D negative: near-duplicate rows,
    where d D / d z = 2 (z_i - z_j) is about 0 anyway.)"""
    w = torch.mul(other, (a / -mean_sq).to(kernel.dtype))
    w.addcmul_(kernel, (b / -mean_sq).to(kernel.dtype))
    w.add_(((c - r) / -mean_sq).to(kernel.dtype)[:, None]).mul_(kernel)  # d/dD (not symmetric)
    rows = (w.sum(dim=1) + w.sum(dim=0))[:, None]
    return 2.0 * (rows * z - w @ z - w.T @ z)


def normalised_hsic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """HSIC(x, y) / sqrt(HSIC(x, x) HSIC(y, y)) with unbiased HSIC estimates, from paired
    rows of x and y: about 0 for independent parts at any n and dimension, 1 for y = x;
    0 below 4 rows. Computed in at least float32 (tested against autograd of the plain
    composition: two kernels, three unbiased estimates, the norm) and returned in x's
    precision."""
    if len(x) < 4:
        return (x.sum() + y.sum()) * 0.0
    return _NormalisedHSIC.apply(x, y).to(x.dtype)


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
