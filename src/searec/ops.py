"""Small tensor operations shared across layers."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch


class _UnitRows(torch.autograd.Function):
    """Rows of the concatenation of each block's parts scaled to unit norm, the blocks side
    by side; two passes each way.

    Autograd through cat, square, sum, clamp, rsqrt and the product ran about ten passes
    over the (users + items) x width tensor; the backward of y = x / max(||x||, eps) is
    (g - y (g . y)) / ||x|| on the rows the clamp leaves alone and g / eps on the others."""

    @staticmethod
    def forward(ctx, eps: float, n_parts: int,  # type: ignore[override]
                *parts: torch.Tensor) -> torch.Tensor:
        sizes = [p.shape[0] for p in parts[:n_parts]]
        n_blocks, width = len(parts) // n_parts, parts[0].shape[1]
        dtype = functools.reduce(torch.promote_types, (p.dtype for p in parts))
        x = parts[0].new_empty(sum(sizes), n_blocks, width, dtype=dtype)
        for i, part in enumerate(parts):
            start = sum(sizes[: i % n_parts])
            x[start : start + part.shape[0], i // n_parts].copy_(part)
        norm = torch.linalg.vector_norm(x, dim=2, keepdim=True)
        clamped = norm <= eps
        inverse = norm.clamp_min_(eps).reciprocal_()
        y = x.mul_(inverse)
        ctx.save_for_backward(y, inverse, clamped)
        ctx.sizes = sizes
        return y.view(y.shape[0], n_blocks * width)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        y, inverse, clamped = ctx.saved_tensors
        grad = grad.reshape(y.shape)
        along = (grad * y).sum(dim=2, keepdim=True).masked_fill_(clamped, 0.0)
        grad_x = torch.addcmul(grad, y, along, value=-1.0).mul_(inverse)
        grads = [part for b in range(y.shape[1]) for part in grad_x[:, b].split(ctx.sizes)]
        return (None, None, *grads)


def unit_rows(x: torch.Tensor | Sequence[torch.Tensor], eps: float = 1e-12) -> torch.Tensor:
    """Rows scaled to unit L2 norm, as ``F.normalize(x, dim=1)`` (x / max(||x||, eps)) to
    float rounding; a sequence of tensors: the rows of their concatenation, without
    autograd keeping the concatenation. Not twice differentiable.

    Autograd's own version (cat, then the row norms' reciprocal as a product) took 1.9x
    as long forward and backward on SEA's 16,018 x 128 TikTok node tensor (one CPU
    thread); F.normalize, which divides by the norm broadcast over the row, is slower
    still (docs/performance.md)."""
    return unit_rows_blocks([[x] if isinstance(x, torch.Tensor) else list(x)], eps)


def unit_rows_blocks(blocks: Sequence[Sequence[torch.Tensor]],
                     eps: float = 1e-12) -> torch.Tensor:
    """``torch.cat([unit_rows(parts) for parts in blocks], dim=1)`` in one pass, without
    the per-block results: block b's rows (the concatenation of ``blocks[b]``) scaled to
    unit norm, in columns b * width to (b + 1) * width. Every block has the same row
    parts' sizes and the same width (SEA: [users_m, items_m] per modality m, so that one
    sparse product propagates every modality)."""
    if not blocks or not blocks[0]:
        raise ValueError("unit_rows_blocks needs at least one block with one part")
    layout = [(p.shape[0], p.shape[1]) for p in blocks[0]]
    if any([(p.shape[0], p.shape[1]) for p in parts] != layout for parts in blocks) or \
            len({w for _, w in layout}) != 1:
        raise ValueError("unit_rows_blocks: every block needs the same row parts and width, "
                         f"got {[[tuple(p.shape) for p in parts] for parts in blocks]}")
    return _UnitRows.apply(eps, len(layout), *(p for parts in blocks for p in parts))
