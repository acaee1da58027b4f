"""LATTICE (Zhang et al., ACM MM 2021): latent item-item structure, as in MMRec;
optionally with SEA's separation.

Per modality, an item-item graph is learned from the projected features z_m =
Linear(f_m): each item's ``knn_k`` most cosine-similar items (itself included), weighted
by that similarity. The learned graphs are mixed with softmax(modal_weight) and
normalised (D^-1/2 W D^-1/2), and combined with the initial graphs (the same
construction on the raw features, each normalised, mixed with the same weights):
A = (1 - lambda) learned + lambda initial. Items get h = A^n_layers e (their ID embeddings
propagated over it), L2-normalised and added to LightGCN's item embeddings; LightGCN runs
over LATTICE's user-item graph D^-1 (A_ui + I). Loss: BPR + reg_weight * L2 of the batch
embeddings.

As in MMRec, the learned graph is rebuilt at the first step of every epoch, with gradient
into the projections and the modality weights through that step only (later steps of
the epoch use it fixed), and afresh for every evaluation. Its k-nearest-neighbour search
runs blockwise (never an items x items matrix) and only the chosen pairs are scored with
gradient. Differs from MMRec in two ways: any number of modalities, and the raw features
are not fine-tuned (as for FREEDOM and MGCN here).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from searec.data.dataset import Dataset
from searec.graphs import (
    CacheDir,
    InteractionGraph,
    bipartite_adjacency,
    edge_propagate,
    hnsw_knn_graph,
    knn_indices,
    normalized_similarity_graphs,
    propagated_mean,
    register_operator,
    registered_operator,
    sym_normalized_edges,
)
from searec.losses import bpr_dot_loss, l2_penalty
from searec.models.base import register
from searec.models.multimodal import MultimodalRecommender, SeparableParams


class LATTICEParams(SeparableParams):
    embedding_dim: int = Field(64, gt=0, description="ID embedding size.")
    feat_embed_dim: int = Field(64, gt=0, description="Width of the projected features "
                                "the learned graphs are built from.")
    n_ui_layers: int = Field(2, ge=0, description="LightGCN layers over the user-item "
                             "graph (MMRec: len(weight_size)).")
    n_layers: int = Field(1, ge=0, description="Propagations over the item-item graph.")
    knn_k: int = Field(10, gt=0, description="Neighbours per item in the item graphs.")
    knn_method: Literal["exact", "hnsw"] = Field(
        "exact", description="How neighbours are found, for the initial graphs and for the "
        "learned ones rebuilt every epoch: exact (blockwise, time ~ items^2) or hnsw "
        "(faiss, approximate, for large catalogues).")
    lambda_coeff: float = Field(0.9, ge=0, le=1, description="Weight of the initial graph "
                                "against the learned one.")
    reg_weight: float = Field(1e-4, ge=0, description="L2 weight on the batch embeddings "
                              "(MMRec searches 0, 1e-5, 1e-4, 1e-3).")


def random_walk_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1 (A + I) of the bipartite user-item graph (LATTICE's LightGCN graph)."""
    adj = bipartite_adjacency(train) + sp.eye(sum(train.shape), dtype=np.float32)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    return (sp.diags((1.0 / degree).astype(np.float32)) @ adj).tocsr()


@register
class LATTICE(MultimodalRecommender):
    """LATTICE: learned item-item graphs from projected features, mixed with kNN graphs."""

    name = "lattice"
    Params = LATTICEParams

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 initial_graphs: dict[str, sp.spmatrix], user_item_graph: sp.spmatrix,
                 params: LATTICEParams) -> None:
        super().__init__(n_users, n_items, features, params.separation, params.cold_start)
        self.params = params
        d = params.embedding_dim
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_users, d)))
        self.item_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_items, d)))
        self.projections = nn.ModuleDict({m: nn.Linear(w, params.feat_embed_dim)
                                          for m, w in self.modality_dims().items()})
        self.modal_weight = nn.Parameter(torch.full((len(self.names),), 1.0 / len(self.names)))
        for m, graph in initial_graphs.items():
            register_operator(self, f"initial_graph_{m}", graph)
        register_operator(self, "ui_graph", user_item_graph)
        # this epoch's learned graph, detached; None: rebuild it (with gradient) next step
        self._fixed: tuple[torch.Tensor, ...] | None = None

    @classmethod
    def build(cls, dataset: Dataset, params: LATTICEParams,  # type: ignore[override]
              cache_dir: CacheDir = None) -> LATTICE:
        initial = normalized_similarity_graphs(dataset.modalities, params.knn_k, cache_dir,
                                               params.knn_method)
        return cls(dataset.n_users, dataset.n_items, dataset.modalities, initial,
                   random_walk_adjacency(dataset.train), params)

    def on_epoch_start(self, epoch: int, rng: np.random.Generator) -> None:
        self._fixed = None

    def learned_graph(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows, cols, normalised values of the mixed learned graph, modality weights)."""
        weights = torch.softmax(self.modal_weight, dim=0)
        rows, cols, values = [], [], []
        for j, (m, x) in enumerate(self.item_inputs().items()):
            unit = F.normalize(x.through(self.projections[m]), dim=1)
            r, c = self._neighbours(unit)
            rows.append(r)
            cols.append(c)
            values.append(weights[j] * (unit[r] * unit[c]).sum(dim=1))
        r, c = torch.cat(rows), torch.cat(cols)
        return r, c, sym_normalized_edges(r, c, torch.cat(values), self.n_items), weights

    def _neighbours(self, unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, cols) of each item's knn_k nearest items by inner product of ``unit``."""
        if self.params.knn_method == "hnsw":
            graph = hnsw_knn_graph(unit.detach().cpu().numpy(), self.params.knn_k).tocoo()
            return (torch.from_numpy(graph.row.astype(np.int64)).to(unit.device),
                    torch.from_numpy(graph.col.astype(np.int64)).to(unit.device))
        idx = knn_indices(unit, self.params.knn_k)
        rows = torch.arange(self.n_items, device=unit.device).repeat_interleave(idx.shape[1])
        return rows, idx.reshape(-1)

    def _item_graph(self) -> tuple[torch.Tensor, ...]:
        if not self.training:
            with torch.no_grad():
                return self.learned_graph()
        if self._fixed is None:
            graph = self.learned_graph()  # with gradient, for this step
            self._fixed = tuple(t.detach() for t in graph)
            return graph
        return self._fixed

    def _items_over_item_graph(self) -> torch.Tensor:
        rows, cols, values, weights = self._item_graph()
        lam = self.params.lambda_coeff
        h = self.item_emb
        for _ in range(self.params.n_layers):
            initial = sum(weights[j] * (registered_operator(self, f"initial_graph_{m}") @ h)
                          for j, m in enumerate(self.names))
            h = (1.0 - lam) * edge_propagate(rows, cols, values, h) + lam * initial
        return F.normalize(h, dim=1)

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_emb, self.item_emb])
        out = propagated_mean(registered_operator(self, "ui_graph"), ego,
                              self.params.n_ui_layers)
        return out[: self.n_users], out[self.n_users :] + self._items_over_item_graph()

    def ranking_loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> dict[str, torch.Tensor]:
        user_rep, item_rep = self(graph)
        u, ip, ineg = user_rep[users], item_rep[pos], item_rep[neg]
        rank = bpr_dot_loss(u, ip, ineg)
        reg = self.params.reg_weight * l2_penalty(u, ip, ineg)
        return {"loss": rank + reg, "bpr": rank, "reg": reg}
