"""Losses shared by every model (one place, no per-model copies)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """-mean log sigmoid(pos - neg), computed stably."""
    return -F.logsigmoid(pos - neg).mean()


def bpr_dot_loss(u: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """BPR with dot-product scores: users u against positive and negative item vectors."""
    return bpr_loss((u * pos).sum(1), (u * neg).sum(1))


def l2_penalty(*tensors: torch.Tensor) -> torch.Tensor:
    """Sum of squared L2 norms of the given (batch) tensors, divided by the batch size."""
    batch = tensors[0].shape[0]
    return sum(t.pow(2).sum() for t in tensors) / (2.0 * batch)  # type: ignore[return-value]
