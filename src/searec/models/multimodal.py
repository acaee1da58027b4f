"""Shared base of models that read item modality features, with optional SEA separation.

A backbone that derives from :class:`MultimodalRecommender` gets its modality features
as buffers and, when its ``separation`` section is set, SEA's
:class:`~searec.separation.Separation` component, used unchanged by every backbone:

- ``modality_inputs()`` (or, for a first linear layer, ``item_inputs()[m].through(layer)``)
  returns p_m = Linear(f_m), split into generic and unique parts, instead of f_m;
- ``loss`` is a template: it calls the backbone's ``ranking_loss`` and adds the
  separation terms (alignment, distancing) on the p_m that ranking loss used, or on
  p_m of the batch's items; its :class:`~searec.models.base.LossResult` carries the
  weighted terms (the trainer measures their share of the gradient), the distancing
  estimator's facts about the step and what to try when a term turns out inert;
- the component's auxiliary objectives (CLUB's q) are declared to the trainer.

So a new backbone writes ``ranking_loss`` over ``modality_inputs()`` and gets separation
for free.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field, field_validator
from torch import nn

from searec.graphs import InteractionGraph, SparseOperator, register_operator, registered_operator
from searec.models.base import LossResult, Recommender
from searec.models.cold import ColdItemMapper, ColdStartParams
from searec.optim import AuxiliaryObjective
from searec.schema import StrictModel
from searec.separation import ModalitySplit, Separation, SeparationParams
from searec.separation.component import SeparationLosses

_SECTION_HINT = ("model.separation is a section: {} (or --separation sea) for its defaults, "
                 "keys such as model.separation.alignment=infonce, or null for none")


def _separation_section(value: Any, required: bool) -> Any:
    """Refuse the old boolean switch (and, where required, null) with a clear message."""
    if isinstance(value, bool):
        raise ValueError(_SECTION_HINT)
    if value is None and required:
        raise ValueError("this model always separates; it needs the section (use {} for "
                         "its defaults)")
    return value


class SeparableParams(StrictModel):
    """Parameters of a backbone that can take SEA's separation (off unless given), and
    of every model that reads item features: how items without interactions are
    represented (``cold_start``)."""

    cold_start: ColdStartParams = Field(
        default_factory=ColdStartParams, description="How items without training "
        "interactions (cold items, items added later) are represented. See "
        "model.cold_start.* below.")

    separation_required: ClassVar[bool] = False
    separation: SeparationParams | None = Field(
        None, description="SEA's separation (split, alignment, distancing) on this "
        "backbone's modality representations; null: off. See model.separation.* below.")

    @field_validator("separation", mode="before")
    @classmethod
    def _section(cls, v: Any) -> Any:
        return _separation_section(v, required=cls.separation_required)


class SeparatedParams(SeparableParams):
    """Parameters of a model that always separates (SEA)."""

    separation_required: ClassVar[bool] = True
    separation: SeparationParams = Field(  # type: ignore[assignment]
        default_factory=SeparationParams, description="SEA's separation (split, "
        "alignment, distancing); required. See model.separation.* below.")


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


class ModalityInput:
    """One modality's item input as a backbone's first linear layer reads it.

    ``through(layer)`` is layer(f_m) without separation, else layer(p_m) with
    p_m = split(f_m); where p_m itself is not needed, that is folded into one linear map
    of f_m when cheaper (:meth:`~searec.separation.ModalitySplit.project_through`)."""

    def __init__(self, features: torch.Tensor, split: ModalitySplit | None = None,
                 projected: torch.Tensor | None = None) -> None:
        self.features = features
        self.split = split
        self.projected = projected

    def through(self, layer: nn.Linear) -> torch.Tensor:
        if self.projected is not None:
            return layer(self.projected)
        if self.split is not None:
            return self.split.project_through(layer, self.features)
        return layer(self.features)


class MultimodalRecommender(Recommender):
    min_modalities = 1
    scores_new_items = True

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray],
                 separation: SeparationParams | None = None,
                 cold_start: ColdStartParams | None = None) -> None:
        super().__init__(n_users, n_items)
        # the cold-item path (searec.models.cold): the mapper exists once fitted after
        # training, or once a state dict that holds one is loaded
        self.cold_start = cold_start if cold_start is not None else ColdStartParams()
        self.cold_mapper: ColdItemMapper | None = None
        self.use_cold_path = True
        self.names = list(features)
        for m, f in features.items():
            self.register_buffer(f"feat_{m}", torch.as_tensor(f, dtype=torch.float32),
                                 persistent=False)
        # items without a modality (all-zero rows), for model.separation.fill_missing
        self.missing = {m: torch.from_numpy(~np.any(np.asarray(f) != 0, axis=1))
                        for m, f in features.items()}
        self._any_missing = any(bool(x.any()) for x in self.missing.values())
        self.separation = (
            Separation({m: f.shape[1] for m, f in features.items()}, separation)
            if separation is not None else None
        )
        # while loss() runs: each p_m over every item its ranking loss computes, for the
        # separation terms of the same call (None outside loss(): nothing outlives a call)
        self._recording: list[dict[str, torch.Tensor]] | None = None

    # ---------------------------------------------------------------- cold items
    def new_cold_mapper(self, rep_dim: int) -> ColdItemMapper:
        """A fresh, unfitted mapper to ``rep_dim``-wide representations, kept as
        ``cold_mapper`` (saved with the model), on the features' device."""
        return self._attach_mapper(rep_dim, self.cold_start.hidden)

    def _attach_mapper(self, rep_dim: int, hidden: int) -> ColdItemMapper:
        feats = self.raw_features()
        dims = {m: f.shape[1] for m, f in feats.items()}
        device = next(iter(feats.values())).device
        self.cold_mapper = ColdItemMapper(dims, rep_dim, hidden).to(device)
        return self.cold_mapper

    def expect_state(self, state: dict[str, torch.Tensor]) -> None:
        """Create the mapper ``state`` holds (with its saved sizes), so that loading it
        fills it: a model is built without one, which is fitted after training."""
        key = "cold_mapper.net.2.weight"
        if self.cold_mapper is None and key in state and state[key].ndim == 2:
            rep_dim, hidden = state[key].shape
            self._attach_mapper(int(rep_dim), int(hidden))

    def cold_path_active(self) -> bool:
        """Whether items without training interactions take the mapper's representation."""
        return (self.use_cold_path and self.cold_mapper is not None
                and self.cold_mapper.is_fitted)

    @torch.no_grad()
    def prepare_inference(self, graph: InteractionGraph) -> None:
        """The backbone's representations; with a fitted cold-item path, every item
        without training interactions in ``graph`` takes the mapper's instead."""
        super().prepare_inference(graph)
        if not self.cold_path_active():
            return
        assert self.cold_mapper is not None and self._item_rep is not None
        cold = torch.nonzero(graph.item_degree().to(self._item_rep.device) == 0).squeeze(1)
        if len(cold):
            feats = {m: f[cold.to(f.device)] for m, f in self.raw_features().items()}
            item_rep = self._item_rep.clone()
            item_rep[cold] = self.cold_mapper.represent(feats).to(item_rep)
            self.use_representations(self._user_rep, item_rep)  # type: ignore[arg-type]

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
        if self.separation is None:
            return feats
        p = self.separation.project(feats)
        if self._fills_missing():
            p = self._fill_missing(p)
        if self._recording is not None:
            self._recording.append(p)
        return p

    def _fills_missing(self) -> bool:
        return (self.separation is not None and self.separation.params.fill_missing
                and len(self.names) > 1 and self._any_missing)

    def _fill_missing(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """p_m of the items without modality m, from their other modalities' aligned
        generic parts (model.separation.fill_missing)."""
        assert self.separation is not None
        split = self.separation.split
        device = next(iter(p.values())).device
        missing = {m: x.to(device) for m, x in self.missing.items()}
        generic = {m: split[m].parts(x)[0] for m, x in p.items()}  # type: ignore[operator]
        complete = ~torch.stack(list(missing.values())).any(0)
        out = dict(p)
        for m in self.names:
            gaps = missing[m]
            if not gaps.any() or gaps.all():  # nothing to fill, or nothing to fill from
                continue
            others = [o for o in self.names if o != m]
            present = ~gaps
            g_m, u_m = split[m].parts(p[m])  # type: ignore[operator]
            means = torch.cat([g_m[present].mean(0), u_m[present].mean(0)])
            fill = means.expand(len(gaps), -1).clone()
            only_m = gaps & ~torch.stack([missing[o] for o in others]).any(0)
            if int(complete.sum()) > 1 and only_m.any():
                inputs = torch.cat([generic[o] for o in others], dim=1)
                predicted = _ridge(inputs, g_m, complete, only_m)
                fill[only_m, : g_m.shape[1]] = predicted
            out[m] = torch.where(gaps[:, None], fill, p[m])
        return out

    def item_inputs(self) -> dict[str, ModalityInput]:
        """Every modality's input for a first linear layer (see :class:`ModalityInput`).

        p_m over every item is computed only when the separation losses look at every
        item (``mi_items: all``); otherwise it is folded into the layer."""
        feats = self.raw_features()
        sep = self.separation
        if sep is None:
            return {m: ModalityInput(f) for m, f in feats.items()}
        if sep.params.mi_items == "all" or self._fills_missing():
            p = self.modality_inputs()
            return {m: ModalityInput(feats[m], projected=p[m]) for m in self.names}
        return {m: ModalityInput(feats[m], split=sep.split[m])  # type: ignore[arg-type]
                for m in self.names}

    # ---------------------------------------------------------------- training
    def ranking_loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> dict[str, torch.Tensor]:
        """The backbone's own loss parts; ``"loss"`` is their weighted total."""
        raise NotImplementedError

    def loss(self, graph: InteractionGraph, users: torch.Tensor, pos: torch.Tensor,
             neg: torch.Tensor) -> LossResult:
        """The backbone's ranking loss plus, with separation, the separation terms (on the
        p_m the ranking loss computed, where it computed them over every item)."""
        self._recording = recorded = []
        try:
            ranking = LossResult.of(self.ranking_loss(graph, users, pos, neg))
        finally:
            self._recording = None
        if self.separation is None:
            return ranking
        sep = self.separation_losses(recorded[-1] if recorded else None, pos, neg)
        return LossResult(ranking.loss + sep.total, {**ranking.parts, **sep.parts},
                          terms=sep.weighted, stats=sep.stats, hints=self.separation.hints())

    def separation_losses(
        self, p: dict[str, torch.Tensor] | None, pos: torch.Tensor, neg: torch.Tensor
    ) -> SeparationLosses:
        """Separation terms on p_m (over all items or the batch's, as configured).

        ``p``: p_m over every item if the caller has it; None computes p_m for just the
        items the losses see."""
        assert self.separation is not None
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

    def auxiliary_objectives(self) -> list[AuxiliaryObjective]:
        return self.separation.objectives() if self.separation is not None else []

    def diagnostics(self, thorough: bool = False) -> dict[str, float]:
        """Linear-Gaussian MI between the separated parts; ``thorough``: also their
        held-out MI from fresh critics (``heldout_<estimator>_<pair>``, mean over 2 folds
        of at most 2,048 items, 200 critic steps: the cheap end of ``searec diagnose``).
        See searec.separation.diagnostics."""
        if self.separation is None:
            return {}
        from searec.separation.diagnostics import (
            heldout_means,
            heldout_separation_mi,
            separation_diagnostics,
        )
        from searec.separation.heldout import HeldoutSettings

        features = self.raw_features()
        out = separation_diagnostics(self.separation, features)
        if thorough:
            out.update(heldout_means(heldout_separation_mi(
                self.separation, features, max_items=2048,
                settings=HeldoutSettings(folds=2, steps=200))))
        return out


def _ridge(inputs: torch.Tensor, target: torch.Tensor, fit: torch.Tensor,
           predict: torch.Tensor) -> torch.Tensor:
    """Ridge regression of ``target`` on ``inputs`` over the ``fit`` rows (centred; its
    weights held constant), applied to the ``predict`` rows with gradients to their
    inputs."""
    with torch.no_grad():
        x, y = inputs[fit].double(), target[fit].double()
        x_mean, y_mean = x.mean(0), y.mean(0)
        xc = x - x_mean
        gram = xc.T @ xc
        strength = 0.01 * max(float(torch.diagonal(gram).mean()), 1e-12)  # as data.missing
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        weights = torch.linalg.solve(gram + strength * eye, xc.T @ (y - y_mean))
    weights, x_mean, y_mean = (t.to(inputs.dtype) for t in (weights, x_mean, y_mean))
    return (inputs[predict] - x_mean) @ weights + y_mean
