"""SEA: separate learning of generic and unique modality representations.

Backbone (as in the authors' code, a DRAGON-like encoder without its user-user graph):
per modality m, p_m = Linear(f_m) is split into generic and unique parts by the
:class:`~searec.separation.Separation` component; p_m goes through
Linear -> leaky_relu -> Linear to the embedding size, users get a free preference vector
per modality, rows are L2-normalised and propagated over the user-item graph
(output x + A x + A^2 x ...). Users are [w_u,m * user_m]_m with learned per-user modality
weights; items are [item_m]_m plus propagation over a frozen item-item kNN graph mixed
from per-modality cosine kNN graphs. Score = dot(user, item); loss = BPR + separation.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.checkpoint import checkpoint

from searec.data.dataset import Dataset
from searec.graphs import (
    BipartiteOperator,
    CacheDir,
    InteractionGraph,
    mixed_knn_graph,
    propagate,
    propagated_sum,
)
from searec.losses import bpr_indexed_loss
from searec.models.base import register
from searec.models.multimodal import (
    KnnGraphParams,
    ModalityInput,
    MultimodalRecommender,
    SeparableParams,
    SeparatedParams,
)
from searec.ops import scale_blocks, unit_rows, unit_rows_blocks


class DualGraphParams(SeparableParams, KnnGraphParams):
    """The dual-graph backbone's parameters: SEA's, and DRAGON's (which adds a user graph)."""

    embedding_dim: int = Field(
        128, gt=0, description="Per-modality user/item embedding size (the authors' code: "
        "64; 128 ranked better on TikTok, docs/performance.md; set 64 to compare with "
        "64-d baselines at equal size).")
    encoder_hidden: int = Field(256, gt=0, description="Hidden width of the modality "
                                "encoder Linear -> leaky_relu -> Linear.")
    n_layers: int = Field(2, ge=0, description="User-item propagation layers.")
    knn_layers: int = Field(1, ge=0, description="Propagations over the item-item graph.")
    recompute: bool = Field(
        False, description="Keep only each modality's encoder input through the forward "
        "pass and recompute its propagation during backward: less memory per user (for "
        "millions of users), more time per step (docs/performance.md).")
    bpr_log2: bool = Field(False, description="Use log2 in BPR like the authors' code "
                           "(BPR scaled by 1/ln 2).")


class SEAParams(SeparatedParams, DualGraphParams):
    """SEA: the dual-graph backbone, always with separation."""


class ModalityGraphEncoder(nn.Module):
    """Item input -> Linear -> leaky_relu -> Linear; free user vectors; normalise; propagate."""

    def __init__(self, n_users: int, in_dim: int, hidden: int, out: int, n_layers: int) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.user_pref = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, out)))
        # in place: autograd then keeps one items x hidden tensor per modality for the
        # backward pass instead of two (615 MB at 200,000 items, 3 modalities, float32)
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.LeakyReLU(inplace=True),
                                 nn.Linear(hidden, out))

    def item_embeddings(self, item_input: ModalityInput) -> torch.Tensor:
        """The items' rows before normalisation: the MLP over their inputs."""
        return self.mlp[2](self.mlp[1](item_input.through(self.mlp[0])))

    def forward(self, item_input: ModalityInput, adj: BipartiteOperator) -> torch.Tensor:
        x = unit_rows([self.user_pref, self.item_embeddings(item_input)])
        return propagated_sum(adj, x, self.n_layers)


@register
class SEA(MultimodalRecommender):
    """SEA: per-modality graph encoders with generic/unique separation (MI losses)."""

    name = "sea"
    Params = SEAParams
    default_lr = 3e-4  # the authors' code: 1e-4 (the reference preset)

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 item_graph: sp.spmatrix, params: DualGraphParams) -> None:
        super().__init__(n_users, n_items, features, separation=params.separation,
                         cold_start=params.cold_start)
        self.params = params
        self.set_item_graph(item_graph)
        dims = self.modality_dims()
        self.encoders = nn.ModuleDict({
            m: ModalityGraphEncoder(n_users, dims[m], params.encoder_hidden,
                                    params.embedding_dim, params.n_layers)
            for m in self.names
        })
        # Per-user modality weights, initialised as a softmax over modalities.
        init = nn.init.xavier_normal_(torch.empty(n_users, len(self.names)))
        self.user_modality_weight = nn.Parameter(F.softmax(init, dim=1))

    @classmethod
    def build(cls, dataset: Dataset, params: SEAParams,  # type: ignore[override]
              cache_dir: CacheDir = None) -> SEA:
        graph = mixed_knn_graph(dataset.modalities, params.knn_k, params.knn_weights, cache_dir,
                                params.knn_method)
        return cls(dataset.n_users, dataset.n_items, dataset.modalities, graph, params)

    def _encode(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        user_nodes, item_rep = self._encode_unweighted(graph)
        return scale_blocks(user_nodes, self.user_modality_weight), item_rep

    def _encode_unweighted(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """The propagated user rows before the per-user modality weights, and the items'
        representations."""
        inputs = self.item_inputs()
        if self.params.recompute and torch.is_grad_enabled():
            user_nodes, item_rep = self._encode_one_by_one(inputs, graph.norm_adj)
        else:
            user_nodes, item_rep = self._encode_side_by_side(inputs, graph.norm_adj)
        return user_nodes, self.through_item_graph(item_rep)

    def through_item_graph(self, item_rep: torch.Tensor) -> torch.Tensor:
        """item_rep + G^L item_rep over the frozen item-item graph G (L = knn_layers)."""
        if self.params.knn_layers == 1:  # one product that adds item_rep in place
            return propagated_sum(self.item_graph, item_rep, 1)
        if self.params.knn_layers:  # the last layer only, not the sum of the layers
            return item_rep + propagate(self.item_graph, item_rep, self.params.knn_layers)[-1]
        return item_rep

    def _encode_side_by_side(self, inputs: dict[str, ModalityInput], adj: BipartiteOperator
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every modality's nodes as column blocks of one tensor, propagated by one sparse
        product per layer: the graph is read once per layer instead of once per modality
        (at 5M interactions, one 384-column product took 0.61x the time of three 128-column
        ones; docs/performance.md), and the item part needs no concatenation."""
        blocks = [[self.encoders[m].user_pref, self.encoders[m].item_embeddings(inputs[m])]
                  for m in self.names]
        nodes = propagated_sum(adj, unit_rows_blocks(blocks), self.params.n_layers)
        user_nodes, item_rep = nodes.split([self.n_users, self.n_items])
        return user_nodes, item_rep

    def _encode_one_by_one(self, inputs: dict[str, ModalityInput], adj: BipartiteOperator
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same values modality by modality, each under ``torch.utils.checkpoint``
        (``model.recompute``): one modality's propagation is alive at a time, in either pass."""
        users, items = [], []
        for m in self.names:
            user_out, item_out = checkpoint(self._modality, m, inputs[m], adj,
                                            use_reentrant=False)
            users.append(user_out)
            items.append(item_out)
        return torch.cat(users, dim=1), torch.cat(items, dim=1)

    def _modality(self, m: str, item_input: ModalityInput,
                  adj: BipartiteOperator) -> tuple[torch.Tensor, torch.Tensor]:
        """Modality m's user part and item part of the (unweighted) representations."""
        # split, not two slices: its backward writes one gradient, where each slice's
        # would be zero-padded to all nodes and then summed
        user_out, item_out = self.encoders[m](item_input, adj).split([self.n_users, self.n_items])
        return user_out, item_out

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        return self._encode(graph)

    def _ranking_tables(self, graph: InteractionGraph
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What BPR scores with: the unweighted user rows and their per-user modality
        weights, applied by BPR to the batch's rows only (the weighted users x width table,
        1.5 GB at 1M users, is never formed in training), and the item table."""
        user_nodes, item_rep = self._encode_unweighted(graph)
        return user_nodes, item_rep, self.user_modality_weight

    def ranking_loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> dict[str, torch.Tensor]:
        user_nodes, item_rep, user_weights = self._ranking_tables(graph)
        rank = bpr_indexed_loss(user_nodes, item_rep, users, pos, neg,
                                user_weights=user_weights)
        if self.params.bpr_log2:
            rank = rank / math.log(2.0)
        return {"loss": rank, "bpr": rank}
