"""LightGCN (He et al., 2020): weightless propagation over the user-item graph."""

from __future__ import annotations

import torch
from pydantic import Field

from searec.graphs import InteractionGraph, propagated_mean
from searec.models.base import register
from searec.models.bpr import BPR, BPRParams


class LightGCNParams(BPRParams):
    n_layers: int = Field(2, ge=0, description="Propagation layers; output = mean of layers.")


@register
class LightGCN(BPR):
    """LightGCN: mean of 0..L propagations of ID embeddings over D^-1/2 A D^-1/2."""

    name = "lightgcn"
    Params = LightGCNParams

    def __init__(self, n_users: int, n_items: int, params: LightGCNParams | None = None) -> None:
        params = params if params is not None else LightGCNParams()
        super().__init__(n_users, n_items, params)
        self.n_layers = params.n_layers

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])
        out = propagated_mean(graph.norm_adj, ego, self.n_layers)
        return out[: self.n_users], out[self.n_users :]
