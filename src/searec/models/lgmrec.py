"""LGMRec (Guo et al., AAAI 2024): local and global graph learning, as in MMRec;
optionally with SEA's separation.

Local embeddings: collaborative (LightGCN over the user-item graph, mean of layers 0..L)
plus, per modality m, the modality graph embedding: items get W_m f_m, users the mean
over their items, and both go through ``n_mm_layers`` propagations over the user-item
graph (last layer), L2-normalised and summed over modalities. Global embeddings: per
modality, items join ``hyper_num`` hyperedges with soft memberships
softmax((f_m V_m + Gumbel noise) / tau) (users: the same of the sum over their items),
dropped out with 1 - keep_rate, and ``n_hyper_layers`` rounds of hypergraph message
passing carry the collaborative item embeddings (:func:`~searec.graphs.hypergraph_propagate`);
summed over modalities, L2-normalised. Final = local + alpha * global; BPR, plus
cl_weight times the hypergraph contrastive loss (a modality's hyperedge embedding of a
user / positive item against the next modality's, over every user / item, summed over
the batch, for every pair of modalities), plus reg_weight times the batch embeddings'
Frobenius norms over the batch size (MMRec's reg_loss). With ``separation``, W_m and V_m
read p_m instead of f_m.

Differs from MMRec in two ways: any number of modalities (MMRec needs image and text and
otherwise falls back to the collaborative part alone), and at inference the memberships
are softmax(f_m V_m / tau) without Gumbel noise (MMRec keeps the noise, so its scores
change from one evaluation to the next).
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from searec.data.dataset import Dataset
from searec.graphs import (
    CacheDir,
    InteractionGraph,
    hypergraph_propagate,
    propagate,
    propagated_mean,
)
from searec.losses import bpr_dot_loss, contrast_with_table, embedding_norm_penalty
from searec.models.base import register
from searec.models.multimodal import MultimodalRecommender, SeparableParams


class LGMRecParams(SeparableParams):
    embedding_dim: int = Field(64, gt=0, description="ID embedding and modality "
                               "projection size.")
    cf_model: Literal["lightgcn", "mf"] = Field(
        "lightgcn", description="Collaborative part: LightGCN propagation or the ID "
        "embeddings themselves.")
    n_ui_layers: int = Field(2, ge=0, description="LightGCN layers of the collaborative "
                             "part.")
    n_mm_layers: int = Field(2, ge=0, description="Propagations of the modality graph "
                             "embeddings over the user-item graph.")
    n_hyper_layers: int = Field(1, ge=1, description="Hypergraph message-passing rounds.")
    hyper_num: int = Field(4, gt=0, description="Hyperedges per modality.")
    keep_rate: float = Field(0.5, gt=0, le=1, description="Share of hyperedge memberships "
                             "kept by dropout while training.")
    alpha: float = Field(0.3, ge=0, description="Weight of the global (hypergraph) "
                         "embeddings.")
    cl_weight: float = Field(1e-4, ge=0, description="Weight of the hypergraph "
                             "contrastive loss.")
    reg_weight: float = Field(1e-6, ge=0, description="Weight of the embedding-norm "
                              "penalty.")
    temperature: float = Field(0.2, gt=0, description="Temperature of the membership "
                               "softmax and of the contrastive loss (MMRec: 0.2).")


@register
class LGMRec(MultimodalRecommender):
    """LGMRec: local (collaborative + modality graph) and global (hypergraph) embeddings."""

    name = "lgmrec"
    Params = LGMRecParams

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 params: LGMRecParams) -> None:
        super().__init__(n_users, n_items, features, params.separation, params.cold_start)
        self.params = params
        d = params.embedding_dim
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_users, d)))
        self.item_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_items, d)))
        dims = self.modality_dims()
        self.transforms = nn.ModuleDict({m: nn.Linear(w, d, bias=False)
                                         for m, w in dims.items()})
        self.hyperedges = nn.ModuleDict({m: nn.Linear(w, params.hyper_num, bias=False)
                                         for m, w in dims.items()})
        for layer in [*self.transforms.values(), *self.hyperedges.values()]:
            nn.init.xavier_uniform_(layer.weight)
        self.membership_dropout = nn.Dropout(1.0 - params.keep_rate)
        self.pairs = list(itertools.combinations(self.names, 2))

    @classmethod
    def build(cls, dataset: Dataset, params: LGMRecParams,  # type: ignore[override]
              cache_dir: CacheDir = None) -> LGMRec:
        return cls(dataset.n_users, dataset.n_items, dataset.modalities, params)

    def _memberships(self, logits: torch.Tensor) -> torch.Tensor:
        tau = self.params.temperature
        if self.training:
            return self.membership_dropout(F.gumbel_softmax(logits, tau, dim=1))
        return torch.softmax(logits / tau, dim=1)

    def _embeddings(self, graph: InteractionGraph
                    ) -> tuple[torch.Tensor, torch.Tensor,
                               dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        """(users, items, per modality its hypergraph (users, items) embeddings)."""
        p = self.params
        ego = torch.cat([self.user_emb, self.item_emb])
        collaborative = (propagated_mean(graph.norm_adj, ego, p.n_ui_layers)
                         if p.cf_model == "lightgcn" else ego)
        collaborative_items = collaborative[self.n_users :]
        local = collaborative
        global_sum = torch.zeros_like(collaborative)
        hyper: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for m, x in self.item_inputs().items():
            items = x.through(self.transforms[m])
            modal = torch.cat([graph.user_mean(items), items])
            local = local + F.normalize(propagate(graph.norm_adj, modal, p.n_mm_layers)[-1])
            item_logits = x.through(self.hyperedges[m])
            user_logits = graph.user_sum(item_logits)
            hyper[m] = hypergraph_propagate(self._memberships(item_logits),
                                            self._memberships(user_logits),
                                            collaborative_items, p.n_hyper_layers)
            global_sum = global_sum + torch.cat(hyper[m])
        out = local + p.alpha * F.normalize(global_sum)
        return out[: self.n_users], out[self.n_users :], hyper

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        users, items, _ = self._embeddings(graph)
        return users, items

    def ranking_loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.params
        user_rep, item_rep, hyper = self._embeddings(graph)
        u, ip, ineg = user_rep[users], item_rep[pos], item_rep[neg]
        rank = bpr_dot_loss(u, ip, ineg)
        contrast = rank.new_zeros(())
        for a, b in self.pairs:
            (ua, ia), (ub, ib) = hyper[a], hyper[b]
            contrast = contrast + contrast_with_table(ua[users], ub[users], ub, p.temperature)
            contrast = contrast + contrast_with_table(ia[pos], ib[pos], ib, p.temperature)
        reg = embedding_norm_penalty(u, ip, ineg)
        total = rank + p.cl_weight * contrast + p.reg_weight * reg
        return {"loss": total, "bpr": rank, "hypergraph_cl": contrast, "reg": reg}
