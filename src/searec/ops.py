"""Small tensor operations shared across layers."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch


class _UnitRows(torch.autograd.Function):
    """Rows of the concatenation of each block's parts scaled to unit norm, the blocks side
    by side.

    Autograd through cat, square, sum, clamp, rsqrt and the product ran about ten passes
    over the (users + items) x width tensor; the backward of y = x / max(||x||, eps) is
    (g - y (g . y)) / ||x|| = g / ||x|| - x (g . x) / ||x||^3 on the rows the clamp leaves
    alone and g / eps on the others. Only the inverse norms are kept for it (the parts
    are the caller's own tensors), and it runs over the parts a few thousand rows at a
    time, so neither pass holds a second nodes x width tensor besides its input and its
    result (at 1M users and 3 x 128 columns each is 1.8 GB)."""

    # rows per chunk in the backward pass: at 128 columns its temporaries are 4 MB each;
    # with 32,768-row chunks (16 MB) it took 1.2x as long on TikTok (docs/performance.md)
    ROWS = 1 << 13

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
        ctx.save_for_backward(inverse, clamped, *parts)
        ctx.n_parts = n_parts
        return x.mul_(inverse).view(x.shape[0], n_blocks * width)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        inverse, clamped, *parts = ctx.saved_tensors
        grad = grad.reshape(inverse.shape[0], inverse.shape[1], -1)
        grads = []
        for i, part in enumerate(parts):
            block = i // ctx.n_parts
            first = sum(p.shape[0] for p in parts[block * ctx.n_parts : i])  # its node row
            out = torch.empty(part.shape, dtype=grad.dtype, device=grad.device)
            for lo in range(0, part.shape[0], _UnitRows.ROWS):
                hi = min(lo + _UnitRows.ROWS, part.shape[0])
                rows = slice(first + lo, first + hi)
                inv = inverse[rows, block]
                x = part[lo:hi].to(grad.dtype)
                g = grad[rows, block]
                # y is never formed: two passes write the result, g inv - x (g . x) inv^3
                # (inv applied one factor at a time: the cube alone can overflow)
                along = (g * x).sum(dim=1, keepdim=True).mul_(inv).mul_(inv).mul_(inv).neg_()
                along.masked_fill_(clamped[rows, block], 0.0)
                torch.mul(g, inv, out=out[lo:hi]).addcmul_(x, along)
            grads.append(out)
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


def weigh_blocks(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``values`` (N, B * d) with row n's column block b times ``weights[n, b]``, in plain
    tensor operations (:func:`scale_blocks` is the same with a leaner backward pass)."""
    n, n_blocks = weights.shape
    return (values.reshape(n, n_blocks, -1) * weights[:, :, None]).view(values.shape)


class _ScaleBlocks(torch.autograd.Function):
    """out[n, b] = weights[n, b] * values[n, b], values (N, B, d) as a (N, B * d) view.

    Autograd's own product keeps a (N, B * d) temporary in its backward pass for the
    weights' gradient (the sum of grad * values over d); here that sum runs a few
    thousand rows at a time."""

    ROWS = 1 << 15

    @staticmethod
    def forward(ctx, values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(values, weights)
        return weigh_blocks(values, weights)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        values, weights = ctx.saved_tensors
        n, n_blocks = weights.shape
        grad = grad.reshape(n, n_blocks, -1)
        grad_values = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_values = (grad * weights[:, :, None].to(grad.dtype)).view(values.shape)
        if ctx.needs_input_grad[1]:
            blocks = values.reshape(n, n_blocks, -1)
            grad_weights = torch.empty(n, n_blocks, dtype=grad.dtype, device=grad.device)
            for lo in range(0, n, _ScaleBlocks.ROWS):
                hi = min(lo + _ScaleBlocks.ROWS, n)
                torch.sum(grad[lo:hi] * blocks[lo:hi], dim=2, out=grad_weights[lo:hi])
        return grad_values, grad_weights


def scale_blocks(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Row n's column block b (of B equal blocks) times ``weights[n, b]``: SEA's per-user
    modality weights on the propagated user rows, without autograd's (rows x columns)
    temporary in the backward pass. ``values`` (N, B * d), ``weights`` (N, B)."""
    if values.dim() != 2 or weights.dim() != 2 or weights.shape[0] != values.shape[0] \
            or values.shape[1] % max(weights.shape[1], 1):
        raise ValueError(f"scale_blocks needs values (N, B * d) and weights (N, B), got "
                         f"{tuple(values.shape)} and {tuple(weights.shape)}")
    return _ScaleBlocks.apply(values, weights)
