"""FREEDOM (Zhou & Shen, ACM MM 2023), as in MMRec; optionally with SEA's separation.

A frozen item-item kNN graph built from the modality features (mixed per-modality cosine
kNN graphs), degree-sensitive edge pruning of the user-item graph while training
(edges kept with probability proportional to 1/sqrt(d_u d_i), renormalised, resampled
every epoch), LightGCN-style propagation of ID embeddings, items = propagated ID
embedding + kNN-graph propagation of the item ID embedding; each modality's projection
Linear(f_m) -> embedding_dim scores users in an extra BPR term weighted by
``modality_weight``. With ``separation``, the projection reads p_m (SEA's split
representation) instead of f_m and the separation losses are added.

Differs from MMRec's code in one way: raw features are not fine-tuned (MMRec wraps them
in a trainable embedding); the projections learn instead.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from searec.data.dataset import Dataset
from searec.graphs import (
    BipartiteOperator,
    CacheDir,
    InteractionGraph,
    mixed_knn_graph,
    propagate,
    propagated_mean,
)
from searec.losses import bpr_indexed_loss
from searec.models.base import register
from searec.models.multimodal import (
    KnnGraphParams,
    MultimodalRecommender,
    SeparableParams,
)


class FREEDOMParams(SeparableParams, KnnGraphParams):
    embedding_dim: int = Field(64, gt=0, description="User/item ID embedding size.")
    n_ui_layers: int = Field(2, ge=0, description="User-item propagation layers (mean).")
    n_mm_layers: int = Field(1, ge=0, description="Item-item kNN propagation layers.")
    dropout: float = Field(0.8, ge=0, lt=1, description="Share of user-item edges pruned "
                           "each epoch (degree-sensitive).")
    modality_weight: float = Field(1e-3, ge=0, description="Weight of the per-modality BPR "
                                   "terms (MMRec's reg_weight).")


def degree_sensitive_prune(
    train: sp.csr_matrix, keep: float, rng: np.random.Generator
) -> sp.csr_matrix:
    """Keep ``keep`` of the edges, sampled without replacement with probability
    proportional to 1/sqrt(d_u d_i) (Gumbel top-k), as a users x items matrix."""
    coo = train.tocoo()
    du = np.asarray(train.sum(axis=1)).ravel()[coo.row]
    di = np.asarray(train.sum(axis=0)).ravel()[coo.col]
    n_keep = int(coo.nnz * keep)
    keys = -0.5 * np.log(du * di) + rng.gumbel(size=coo.nnz)
    kept = np.argpartition(-keys, n_keep - 1)[:n_keep] if n_keep < coo.nnz else np.arange(coo.nnz)
    return sp.csr_matrix((np.ones(len(kept), np.float32), (coo.row[kept], coo.col[kept])),
                         shape=train.shape)


@register
class FREEDOM(MultimodalRecommender):
    """FREEDOM: frozen kNN item graph + degree-pruned user-item graph (LightGCN-style)."""

    name = "freedom"
    Params = FREEDOMParams

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 item_graph: sp.spmatrix, train: sp.csr_matrix, params: FREEDOMParams) -> None:
        super().__init__(n_users, n_items, features, params.separation, params.cold_start)
        self.params = params
        self.train_matrix = train
        d = params.embedding_dim
        self.user_emb = nn.Embedding(n_users, d)
        self.item_emb = nn.Embedding(n_items, d)
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)
        self.set_item_graph(item_graph)
        self.modality_proj = nn.ModuleDict(
            {m: nn.Linear(w, d) for m, w in self.modality_dims().items()})
        self._train_adj: BipartiteOperator | None = None

    @classmethod
    def build(cls, dataset: Dataset, params: FREEDOMParams,  # type: ignore[override]
              cache_dir: CacheDir = None) -> FREEDOM:
        graph = mixed_knn_graph(dataset.modalities, params.knn_k, params.knn_weights, cache_dir,
                                params.knn_method)
        return cls(dataset.n_users, dataset.n_items, dataset.modalities, graph, dataset.train,
                   params)

    def on_epoch_start(self, epoch: int, rng: np.random.Generator) -> None:
        if self.params.dropout <= 0:
            self._train_adj = None
            return
        pruned = degree_sensitive_prune(self.train_matrix, 1.0 - self.params.dropout, rng)
        device = self.user_emb.weight.device
        self._train_adj = BipartiteOperator.normalized(pruned, device)

    def _propagate(self, adj: BipartiteOperator) -> tuple[torch.Tensor, torch.Tensor]:
        h = propagate(self.item_graph, self.item_emb.weight, self.params.n_mm_layers)[-1]
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])
        out = propagated_mean(adj, ego, self.params.n_ui_layers)
        return out[: self.n_users], out[self.n_users :] + h

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        return self._propagate(graph.norm_adj)

    def ranking_loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> dict[str, torch.Tensor]:
        adj = self._train_adj if self._train_adj is not None else graph.norm_adj
        user_rep, item_rep = self._propagate(adj)
        rank = bpr_indexed_loss(user_rep, item_rep, users, pos, neg)
        p = self.modality_inputs()
        parts: dict[str, torch.Tensor] = {"bpr": rank}
        total = rank
        for m, x in p.items():
            z = self.modality_proj[m](x)
            parts[f"bpr_{m}"] = bpr_indexed_loss(user_rep, z, users, pos, neg)
            total = total + self.params.modality_weight * parts[f"bpr_{m}"]
        return {"loss": total, **parts}
