"""DRAGON (Zhou et al., 2023): dual graphs, as in MMRec; optionally with SEA's separation.

SEA's backbone is DRAGON without its user-user graph, so DRAGON is that backbone
(:class:`~searec.models.sea.SEA`'s encoders, per-user modality weights and item-item kNN
propagation) plus the homogeneous user graph: each user's ``user_k`` users with the most
training items in common (computed sparsely, :func:`~searec.graphs.user_cooccurrence_topk`),
weighted by the softmax of those co-occurrence counts, and user = user + W_uu user.
Loss: BPR with log2 (as in MMRec) plus reg_weight times the mean squared per-modality
user preference vectors of the batch's users and the mean squared modality weights.

Differs from MMRec in one way: MMRec re-draws, every epoch, the random repeats that pad
the neighbour list of a user with fewer than ``user_k`` co-occurring users; here they are
drawn once (seed 0), so a saved model scores the same after loading.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from searec.data.dataset import Dataset
from searec.graphs import (
    CacheDir,
    InteractionGraph,
    mixed_knn_graph,
    register_operator,
    registered_operator,
    softmax_user_graph,
    user_cooccurrence_topk,
)
from searec.models.base import register
from searec.models.sea import SEA, DualGraphParams


class DRAGONParams(DualGraphParams):
    """SEA's backbone parameters (with MMRec's DRAGON defaults) and the user graph's."""

    embedding_dim: int = Field(64, gt=0, description="Per-modality user/item embedding "
                               "size.")
    user_k: int = Field(40, gt=0, description="Co-occurring users each user aggregates.")
    reg_weight: float = Field(1e-3, ge=0, description="Weight of the squared-preference "
                              "penalty (MMRec searches 1e-5 to 1e-1).")
    bpr_log2: bool = Field(True, description="BPR with log2, as MMRec's DRAGON.")


@register
class DRAGON(SEA):
    """DRAGON: SEA's dual-graph backbone plus a user-user co-occurrence graph."""

    name = "dragon"
    Params = DRAGONParams  # type: ignore[assignment]
    default_lr = 1e-4  # MMRec searches 1e-5 to 1e-1

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 item_graph: sp.spmatrix, user_graph: sp.spmatrix,
                 params: DRAGONParams) -> None:
        super().__init__(n_users, n_items, features, item_graph, params)
        register_operator(self, "user_graph", user_graph)

    @classmethod
    def build(cls, dataset: Dataset, params: DRAGONParams,  # type: ignore[override]
              cache_dir: CacheDir = None) -> DRAGON:
        item_graph = mixed_knn_graph(dataset.modalities, params.knn_k, params.knn_weights,
                                     cache_dir, params.knn_method)
        rows, neighbours, counts = user_cooccurrence_topk(dataset.train, params.user_k)
        user_graph = softmax_user_graph(dataset.n_users, rows, neighbours, counts,
                                        params.user_k, np.random.default_rng(0))
        return cls(dataset.n_users, dataset.n_items, dataset.modalities, item_graph,
                   user_graph, params)

    def _encode(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = super()._encode(graph)
        return users + registered_operator(self, "user_graph") @ users, items

    def _ranking_tables(self, graph: InteractionGraph
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        # the user graph mixes weighted rows, so BPR reads them formed
        return (*self._encode(graph), None)

    def ranking_loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = super().ranking_loss(graph, users, pos, neg)
        preference = sum(enc.user_pref[users].pow(2).mean()  # type: ignore[union-attr]
                         for enc in self.encoders.values())
        reg = self.params.reg_weight * (preference + self.user_modality_weight.pow(2).mean())
        return {**parts, "loss": parts["loss"] + reg, "reg": reg}
