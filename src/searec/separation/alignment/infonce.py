"""Symmetric InfoNCE: the contrastive loss in both directions, averaged."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from searec.separation.alignment.base import (
    AlignmentEstimator,
    ContrastiveParams,
    register_alignment,
)


def infonce_loss(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean of the a->b and b->a cross-entropies over cosine logits / tau."""
    logits = F.normalize(za, dim=1) @ F.normalize(zb, dim=1).T / temperature
    target = torch.arange(len(za), device=za.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


@register_alignment
class InfoNCE(AlignmentEstimator):
    """Both directions, averaged: neither modality is the anchor."""

    name = "infonce"
    Params = ContrastiveParams
    params: ContrastiveParams

    def forward(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        return infonce_loss(za, zb, self.params.temperature)
