"""Matrix factorisation trained with BPR (Rendle et al., 2009)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from searec.graphs import InteractionGraph
from searec.losses import bpr_indexed_loss, l2_penalty
from searec.models.base import LossResult, Recommender, register
from searec.schema import StrictModel


class BPRParams(StrictModel):
    embedding_dim: int = Field(64, gt=0, description="Size of user and item embeddings.")
    reg_weight: float = Field(1e-4, ge=0, description="L2 weight on the batch embeddings.")


@register
class BPR(Recommender):
    """MF-BPR: score = dot(user embedding, item embedding)."""

    name = "bpr"
    Params = BPRParams

    def __init__(self, n_users: int, n_items: int, params: BPRParams | None = None) -> None:
        super().__init__(n_users, n_items)
        params = params if params is not None else type(self).Params()
        self.params = params
        self.reg_weight = params.reg_weight
        self.user_emb = nn.Embedding(n_users, params.embedding_dim)
        self.item_emb = nn.Embedding(n_items, params.embedding_dim)
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_emb.weight, self.item_emb.weight

    def loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
             neg: torch.Tensor) -> LossResult:
        """BPR on the output representations, L2 on the batch's own (ego) embeddings."""
        user_rep, item_rep = self(graph)
        rank = bpr_indexed_loss(user_rep, item_rep, users, pos, neg)
        reg = self.reg_weight * l2_penalty(
            self.user_emb(users), self.item_emb(pos), self.item_emb(neg)
        )
        return LossResult(rank + reg, {"bpr": rank, "reg": reg})
