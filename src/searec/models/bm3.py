"""BM3 (Zhou et al., WWW 2023): bootstrapped latent representations, as in MMRec.

No negative items: every training pair (u, i) is scored by how well an online view
predicts a target view of its counterpart. LightGCN over the user-item graph gives
(h_u, h_i + e_i) (the item ID embedding e_i is added after the propagation); each
modality's features go through their own Linear(f_m) -> d. The target views are copies
of the online representations with dropout and no gradient; one shared linear
predictor maps every online view. With cos the cosine similarity, per batch:

    L = (1 - cos(P h_u, h~_i)) + (1 - cos(P h_i, h~_u))                    graph views
        + cl_weight sum_m [(1 - cos(P z_m,i, h~_i))                   modality alignment
                           + (1 - cos(P z_m,i, z~_m,i))]                   masked modality
        + reg_weight (||H_users|| + ||H_items||) / n_items          (MMRec's EmbLoss:
                                                          Frobenius norms, not squared)

Scores are P h_u . P h_i. Any number of modalities (MMRec: image and text). As in MMRec
the raw features are fine-tuned (``train_features``; false keeps them fixed).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from searec.data.dataset import Dataset
from searec.graphs import CacheDir, InteractionGraph, propagated_mean
from searec.losses import cosine_distance, embedding_norm_penalty
from searec.models.base import LossResult, Recommender, register
from searec.schema import StrictModel


class BM3Params(StrictModel):
    embedding_dim: int = Field(64, gt=0, description="ID embedding and modality projection "
                               "size.")
    n_layers: int = Field(1, ge=0, description="LightGCN layers over the user-item graph "
                          "(MMRec searches 1, 2).")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout that makes the target "
                           "views (MMRec searches 0.3, 0.5).")
    reg_weight: float = Field(0.1, ge=0, description="Weight of the embedding-norm penalty "
                              "(MMRec searches 0.1, 0.01).")
    cl_weight: float = Field(2.0, ge=0, description="Weight of the modality alignment and "
                             "masked-modality losses.")
    train_features: bool = Field(True, description="Fine-tune the raw modality features "
                                 "(as MMRec does); false keeps them fixed.")


@register
class BM3(Recommender):
    """BM3: bootstrapped graph and modality views, no negative sampling."""

    name = "bm3"
    Params = BM3Params
    min_modalities = 1
    uses_negatives = False

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 params: BM3Params) -> None:
        super().__init__(n_users, n_items)
        self.params = params
        self.names = list(features)
        d = params.embedding_dim
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_users, d)))
        self.item_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_items, d)))
        self.predictor = nn.Linear(d, d)
        nn.init.xavier_normal_(self.predictor.weight)
        self.features = nn.ParameterDict() if params.train_features else None
        self.projections = nn.ModuleDict()
        for m, f in features.items():
            table = torch.as_tensor(f, dtype=torch.float32)
            if self.features is not None:
                self.features[m] = nn.Parameter(table.clone())
            else:
                self.register_buffer(f"feat_{m}", table, persistent=False)
            self.projections[m] = nn.Linear(table.shape[1], d)
            nn.init.xavier_normal_(self.projections[m].weight)

    @classmethod
    def build(cls, dataset: Dataset, params: BM3Params,  # type: ignore[override]
              cache_dir: CacheDir = None) -> BM3:
        return cls(dataset.n_users, dataset.n_items, dataset.modalities, params)

    def _feature(self, m: str) -> torch.Tensor:
        return self.features[m] if self.features is not None else getattr(self, f"feat_{m}")

    def _online(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_users, h_items) before the predictor."""
        ego = torch.cat([self.user_emb, self.item_emb])
        out = propagated_mean(graph.norm_adj, ego, self.params.n_layers)
        return out[: self.n_users], out[self.n_users :] + self.item_emb

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = self._online(graph)
        return self.predictor(users), self.predictor(items)

    def loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
             neg: torch.Tensor) -> LossResult:
        """``neg`` is ignored (BM3 samples no negatives; the trainer passes none)."""
        p = self.params
        h_users, h_items = self._online(graph)
        u, i = h_users[users], h_items[pos]
        with torch.no_grad():  # targets: dropout views without gradient
            target_u = F.dropout(u, p.dropout, training=True)
            target_i = F.dropout(i, p.dropout, training=True)
        graph_views = (cosine_distance(self.predictor(u), target_i)
                       + cosine_distance(self.predictor(i), target_u))
        align = graph_views.new_zeros(())
        masked = graph_views.new_zeros(())
        parts: dict[str, torch.Tensor] = {}
        for m in self.names:
            z = self.projections[m](self._feature(m)[pos])
            with torch.no_grad():
                target_z = F.dropout(z, p.dropout, training=True)
            online_z = self.predictor(z)
            parts[f"align_{m}"] = cosine_distance(online_z, target_i)
            parts[f"masked_{m}"] = cosine_distance(online_z, target_z)
            align = align + parts[f"align_{m}"]
            masked = masked + parts[f"masked_{m}"]
        reg = embedding_norm_penalty(h_users, h_items)
        total = graph_views + p.cl_weight * (align + masked) + p.reg_weight * reg
        return LossResult(total, {"graph_views": graph_views, **parts, "reg": reg})
