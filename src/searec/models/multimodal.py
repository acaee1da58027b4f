"""Shared base of models that read item modality features, with optional SEA separation.

A backbone that derives from :class:`MultimodalRecommender` gets its modality features
as buffers, and, when ``separate`` is on, the SEA :class:`~searec.separation.Separation`
component: ``modality_inputs()`` then returns p_m = Linear(f_m) (split into generic and
unique parts) instead of the raw features, ``separation_losses`` adds alignment and
distancing, and CLUB's q networks are trained after each step. The component itself is
used unchanged by every backbone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from searec.graphs import SparseOperator, register_operator, registered_operator
from searec.models.base import Recommender
from searec.schema import StrictModel
from searec.separation import Separation, SeparationParams


class PluginParams(SeparationParams):
    """A backbone's parameters include the separation component's, used when
    ``separation`` is true."""

    separation: bool = Field(False, description="Add SEA's separation (split, alignment, "
                             "distancing) to this backbone's modality representations.")


class KnnGraphParams(StrictModel):
    """The frozen item-item graph of multimodal models (SEA, FREEDOM)."""

    knn_k: int = Field(10, gt=0, description="Neighbours per item in the kNN graphs.")
    knn_weights: dict[str, float] | None = Field(
        None, description="Modality -> weight of its kNN graph in the mix (normalised to "
        "sum 1). None: equal weights. SEA's and FREEDOM's authors use image 0.1, text 0.9.")
    knn_method: Literal["exact", "hnsw"] = Field(
        "exact", description="exact: cosine kNN by blockwise matmul (time grows with "
        "items^2). hnsw: approximate, with a faiss HNSW index (needs searec[ann]); for "
        "catalogues of hundreds of thousands of items (docs/performance.md).")


class MultimodalRecommender(Recommender):
    min_modalities = 1

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 separation: SeparationParams | None = None) -> None:
        super().__init__(n_users, n_items)
        self.names = list(features)
        for m, f in features.items():
            self.register_buffer(f"feat_{m}", torch.as_tensor(f, dtype=torch.float32),
                                 persistent=False)
        self.separation = (
            Separation({m: f.shape[1] for m, f in features.items()}, separation)
            if separation is not None else None
        )

    @classmethod
    def separates(cls, params: StrictModel) -> bool:
        # SEA always separates (no switch); plug-in backbones when ``separation`` is on.
        return isinstance(params, SeparationParams) and getattr(params, "separation", True)

    def set_item_graph(self, graph: sp.spmatrix) -> None:
        """Keep the item-item graph as buffers (moved by ``.to``, not saved: it is rebuilt)."""
        register_operator(self, "item_graph", graph)

    @property
    def item_graph(self) -> SparseOperator:
        return registered_operator(self, "item_graph")

    def raw_features(self) -> dict[str, torch.Tensor]:
        return {m: getattr(self, f"feat_{m}") for m in self.names}

    def modality_dims(self) -> dict[str, int]:
        """Width of what :meth:`modality_inputs` returns, per modality."""
        if self.separation is not None:
            return self.separation.out_dims()
        return {m: f.shape[1] for m, f in self.raw_features().items()}

    def modality_inputs(self) -> dict[str, torch.Tensor]:
        """p_m (separated) or the raw features f_m, for every item."""
        feats = self.raw_features()
        return self.separation.project(feats) if self.separation is not None else feats

    def modality_layer(
        self, layers: Mapping[str, nn.Linear]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """(layer_m(input_m) for every item, the inputs p_m over every item or None).

        When the MI losses see only the batch's items, p_m is not needed for every item:
        the separation folds layer_m into its projection where that is cheaper
        (:meth:`~searec.separation.ModalitySplit.project_through`) and ``p`` is None.
        """
        sep = self.separation
        if sep is None or sep.params.mi_items == "all":
            p = self.modality_inputs()
            return {m: layers[m](x) for m, x in p.items()}, p
        return sep.project_through(layers, self.raw_features()), None

    def separation_losses(
        self, p: dict[str, torch.Tensor] | None, pos: torch.Tensor, neg: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Separation terms on p_m (over all items or the batch's, as configured).

        ``p``: p_m over every item if the caller has it; None computes p_m for just the
        items the losses see."""
        if self.separation is None:
            return {}
        params = self.separation.params
        n = self.n_items
        items = torch.unique(torch.cat([pos, neg])) if params.mi_items == "batch" else None
        size = n if items is None else len(items)
        if params.mi_max_items is not None and size > params.mi_max_items:
            pick = torch.randperm(size, device=pos.device)[: params.mi_max_items]
            items = pick if items is None else items[pick]
        if p is None:
            feats = self.raw_features()
            p = self.separation.project(
                feats if items is None else {m: f[items] for m, f in feats.items()})
        elif items is not None:
            p = {m: x[items] for m, x in p.items()}
        return self.separation.losses(p)

    def main_parameters(self) -> Iterator[nn.Parameter]:
        if self.separation is None:
            return self.parameters()
        q_ids = {id(q) for q in self.separation.q_parameters()}
        return (q for q in self.parameters() if id(q) not in q_ids)

    def auxiliary_step(self) -> dict[str, float]:
        return self.separation.update_q() if self.separation is not None else {}

    def use_fused_adam(self, fused: bool) -> None:
        if self.separation is not None:
            self.separation.distancing.use_fused_adam(fused)

    def diagnostics(self) -> dict[str, float]:
        """Gaussian MI between the separated parts (see searec.separation.diagnostics)."""
        if self.separation is None:
            return {}
        from searec.separation.diagnostics import separation_diagnostics

        return separation_diagnostics(self.separation, self.raw_features())
