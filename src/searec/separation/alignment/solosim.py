"""Solosim: the reference's one-direction contrastive loss (SEA's Solosimloss).

For each anchor item i, -log softmax_j(cos(z_a,i, z_b,j) / tau)[i]: the softmax runs over
the other modality's items. Its InfoNCE bound is log(n) - loss.
"""

from __future__ import annotations

import torch

from searec.losses import one_way_infonce
from searec.separation.alignment.base import (
    AlignmentEstimator,
    ContrastiveParams,
    register_alignment,
)


def solosim_loss(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> torch.Tensor:
    """One-direction contrastive loss; ``za`` anchors, positives on the diagonal."""
    return one_way_infonce(za, zb, temperature)


@register_alignment
class Solosim(AlignmentEstimator):
    """One direction: ``za`` anchors, the softmax runs over ``zb``'s items."""

    name = "solosim"
    Params = ContrastiveParams
    params: ContrastiveParams

    def forward(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        return solosim_loss(za, zb, self.params.temperature)
