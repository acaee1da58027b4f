"""MGCN (Yu et al., ACM MM 2023): multi-view graph convolution, as in MMRec; optionally
with SEA's separation.

Behaviour-guided purification: each modality's item view is the item ID embedding gated
by its features, e_i * sigmoid(W_m (Linear(f_m))). Views: the user-item view
(LightGCN over the user-item graph, mean of layers, the "content" embeddings) and, per
modality, the item-item view (the purified item embeddings propagated ``n_layers`` times
over that modality's cosine-weighted kNN graph, D^-1/2 W D^-1/2; users aggregate them
through the normalised user-item block). Attention fusion: a shared query scores each
modality's view, softmax over modalities gives the common part; each modality's specific
part (view - common) is gated by the user-item view (sigmoid(W'_m content));
side = (sum of specific parts + common) / (modalities + 1); final = content + side.
Loss: BPR + reg_weight * L2 of the batch embeddings + cl_weight * [InfoNCE(side, content)
over the batch's items + over its users] (temperature 0.2). With ``separation``, the
feature projections read p_m.

Differs from MMRec in two ways: any number of modalities (MMRec: image and text), and the
raw features are not fine-tuned (as for FREEDOM here); MMRec also decays its learning
rate by 0.96 every 50 epochs (here: train.lr_schedule).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from searec.data.dataset import Dataset
from searec.graphs import (
    CacheDir,
    InteractionGraph,
    SparseOperator,
    normalized_similarity_graphs,
    propagate,
    propagated_mean,
    register_operator,
    registered_operator,
)
from searec.losses import bpr_dot_loss, l2_penalty, one_way_infonce
from searec.models.base import register
from searec.models.multimodal import MultimodalRecommender, SeparableParams


class MGCNParams(SeparableParams):
    embedding_dim: int = Field(64, gt=0, description="ID embedding and modality "
                               "projection size.")
    n_ui_layers: int = Field(2, ge=0, description="LightGCN layers of the user-item view.")
    n_layers: int = Field(1, ge=0, description="Propagations over each modality's item "
                          "graph.")
    knn_k: int = Field(10, gt=0, description="Neighbours per item in the kNN graphs.")
    knn_method: Literal["exact", "hnsw"] = Field(
        "exact", description="exact: cosine kNN by blockwise matmul; hnsw: approximate "
        "(faiss), as for sea and freedom.")
    reg_weight: float = Field(1e-4, ge=0, description="L2 weight on the batch embeddings.")
    cl_weight: float = Field(0.01, ge=0, description="Weight of the side/content "
                             "contrastive loss (MMRec's cl_loss; it searches 1e-3, 1e-2, "
                             "1e-1).")
    temperature: float = Field(0.2, gt=0, description="Temperature of that loss.")


@register
class MGCN(MultimodalRecommender):
    """MGCN: purified modality views, item-item and user-item views, attention fusion."""

    name = "mgcn"
    Params = MGCNParams

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 item_graphs: dict[str, sp.spmatrix], params: MGCNParams) -> None:
        super().__init__(n_users, n_items, features, params.separation, params.cold_start)
        self.params = params
        d = params.embedding_dim
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_users, d)))
        self.item_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_items, d)))
        for m, graph in item_graphs.items():
            register_operator(self, f"item_graph_{m}", graph)
        self.projections = nn.ModuleDict({m: nn.Linear(w, d)
                                          for m, w in self.modality_dims().items()})
        self.purifiers = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, d), nn.Sigmoid())
                                        for m in self.names})
        self.preferences = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, d), nn.Sigmoid())
                                          for m in self.names})
        self.query = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))

    @classmethod
    def build(cls, dataset: Dataset, params: MGCNParams,  # type: ignore[override]
              cache_dir: CacheDir = None) -> MGCN:
        graphs = normalized_similarity_graphs(dataset.modalities, params.knn_k, cache_dir,
                                              params.knn_method)
        return cls(dataset.n_users, dataset.n_items, dataset.modalities, graphs, params)

    def item_graph_of(self, modality: str) -> SparseOperator:
        return registered_operator(self, f"item_graph_{modality}")

    def _views(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """(content, side) over all users and items."""
        p = self.params
        content = propagated_mean(graph.norm_adj,
                                  torch.cat([self.user_emb, self.item_emb]), p.n_ui_layers)
        zeros = self.user_emb.new_zeros((self.n_users, p.embedding_dim))
        views = []
        for m, x in self.item_inputs().items():
            purified = self.item_emb * self.purifiers[m](x.through(self.projections[m]))
            items = propagate(self.item_graph_of(m), purified, p.n_layers)[-1]
            # users: the normalised user-item block of the adjacency applied to the items
            users = (graph.norm_adj @ torch.cat([zeros, items]))[: self.n_users]
            views.append(torch.cat([users, items]))
        scores = torch.cat([self.query(v) for v in views], dim=1)
        weights = torch.softmax(scores, dim=1)
        common = sum(weights[:, j : j + 1] * v for j, v in enumerate(views))
        specific = [self.preferences[m](content) * (v - common)
                    for m, v in zip(self.names, views, strict=True)]
        side = (sum(specific) + common) / (len(views) + 1)
        return content, side  # type: ignore[return-value]

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        content, side = self._views(graph)
        out = content + side
        return out[: self.n_users], out[self.n_users :]

    def ranking_loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.params
        content, side = self._views(graph)
        out = content + side
        user_rep, item_rep = out[: self.n_users], out[self.n_users :]
        u, ip, ineg = user_rep[users], item_rep[pos], item_rep[neg]
        rank = bpr_dot_loss(u, ip, ineg)
        reg = p.reg_weight * l2_penalty(u, ip, ineg)
        items = self.n_users + pos
        contrast = (one_way_infonce(side[items], content[items], p.temperature)
                    + one_way_infonce(side[users], content[users], p.temperature))
        total = rank + reg + p.cl_weight * contrast
        return {"loss": total, "bpr": rank, "reg": reg, "contrast": contrast}
