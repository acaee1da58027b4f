"""VBPR (He & McAuley, AAAI 2016), as in MMRec: ID embeddings plus a linear projection of
the item's concatenated modality features; optionally with SEA's separation.

score(u, i) = [gamma_u ; theta_u] . [gamma_i ; E f_i]. With ``separation``, f_i is the
concatenation of the separated modality representations p_m instead of raw features.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from searec.data.dataset import Dataset
from searec.graphs import CacheDir, InteractionGraph
from searec.losses import bpr_dot_loss, l2_penalty
from searec.models.base import register
from searec.models.multimodal import MultimodalRecommender, SeparableParams


class VBPRParams(SeparableParams):
    embedding_dim: int = Field(64, gt=0, description="Size of the ID part and of the "
                               "content part of item embeddings (users get both).")
    reg_weight: float = Field(1e-4, ge=0, description="L2 weight on batch embeddings.")


@register
class VBPR(MultimodalRecommender):
    """VBPR: ID embedding + linear projection of concatenated modality features."""

    name = "vbpr"
    Params = VBPRParams

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 params: VBPRParams) -> None:
        super().__init__(n_users, n_items, features, params.separation, params.cold_start)
        d = params.embedding_dim
        self.reg_weight = params.reg_weight
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_users, 2 * d)))
        self.item_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_items, d)))
        self.content = nn.Linear(sum(self.modality_dims().values()), d)
        nn.init.xavier_normal_(self.content.weight)
        nn.init.zeros_(self.content.bias)

    @classmethod
    def build(cls, dataset: Dataset, params: VBPRParams,  # type: ignore[override]
              cache_dir: CacheDir = None) -> VBPR:
        return cls(dataset.n_users, dataset.n_items, dataset.modalities, params)

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.modality_inputs()
        items = torch.cat([self.item_emb, self.content(torch.cat(list(p.values()), dim=1))], 1)
        return self.user_emb, items

    def ranking_loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> dict[str, torch.Tensor]:
        user_rep, item_rep = self(graph)
        u, ip, ineg = user_rep[users], item_rep[pos], item_rep[neg]
        rank = bpr_dot_loss(u, ip, ineg)
        reg = self.reg_weight * l2_penalty(u, ip, ineg)
        return {"loss": rank + reg, "bpr": rank, "reg": reg}
