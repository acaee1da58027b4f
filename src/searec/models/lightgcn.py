"""LightGCN (He et al., 2020): weightless propagation over the user-item graph."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from searec.config import StrictModel
from searec.graphs import InteractionGraph, propagate
from searec.losses import bpr_loss, l2_penalty
from searec.models.base import Recommender, register


class LightGCNParams(StrictModel):
    embedding_dim: int = Field(64, gt=0, description="Size of user and item embeddings.")
    n_layers: int = Field(2, ge=0, description="Propagation layers; output = mean of layers.")
    reg_weight: float = Field(1e-4, ge=0, description="L2 weight on the batch ego embeddings.")


@register
class LightGCN(Recommender):
    """LightGCN: mean of 0..L propagations of ID embeddings over D^-1/2 A D^-1/2."""

    name = "lightgcn"
    Params = LightGCNParams

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, n_layers: int = 2,
                 reg_weight: float = 1e-4) -> None:
        super().__init__(n_users, n_items)
        self.n_layers = n_layers
        self.reg_weight = reg_weight
        self.user_emb = nn.Embedding(n_users, embedding_dim)
        self.item_emb = nn.Embedding(n_items, embedding_dim)
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])
        out = torch.stack(propagate(graph.norm_adj, ego, self.n_layers)).mean(0)
        return out[: self.n_users], out[self.n_users :]

    def loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
             neg: torch.Tensor) -> dict[str, torch.Tensor]:
        user_rep, item_rep = self(graph)
        u, p, n = user_rep[users], item_rep[pos], item_rep[neg]
        rank = bpr_loss((u * p).sum(1), (u * n).sum(1))
        reg = self.reg_weight * l2_penalty(
            self.user_emb(users), self.item_emb(pos), self.item_emb(neg)
        )
        return {"loss": rank + reg, "bpr": rank, "reg": reg}
