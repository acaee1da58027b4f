"""Distancing within a modality: minimise an upper bound (or a proxy) on
I(generic_m; unique_m).

Each estimator is one module of this package, registered by name (``club``, ``l1out``,
``neg_l2``, ``hsic``); :class:`Distancing` maps every modality's generic and unique parts
to a common width with its own two linear transforms (for estimators that compare
transformed parts) and applies the chosen estimator.
"""

from __future__ import annotations

import torch
from torch import nn

from searec.optim import AuxiliaryObjective
from searec.separation.distancing import (  # noqa: F401  (registration)
    club,
    hsic,
    l1out,
    negative_l2,
)
from searec.separation.distancing.base import (
    DISTANCINGS,
    DistancingEstimator,
    DistancingParams,
    TransformedParams,
    distancing_registry,
    register_distancing,
)
from searec.separation.distancing.club import club_sample_bound
from searec.separation.distancing.hsic import HSICParams, normalised_hsic
from searec.separation.distancing.l1out import L1OUT_MAX, l1out_bound
from searec.separation.distancing.negative_l2 import neg_l2
from searec.separation.distancing.variational import (
    GaussianQ,
    VariationalEstimator,
    VariationalParams,
    pairwise_log_density,
    q_nll,
)


class Distancing(nn.Module):
    """Per modality: push the generic and unique parts apart with the estimator its
    section names (``params``; name ``none``: off), after transforming both to the
    section's ``dim`` where the estimator compares transformed parts. ``order``: the
    modality order of cross-modal pairs (``model.separation.pair_order``)."""

    def __init__(self, generic_dims: dict[str, int], unique_dims: dict[str, int],
                 params: DistancingParams | str = "club",
                 order: list[str] | None = None) -> None:
        super().__init__()
        params = DISTANCINGS.section(params)
        estimator = None if params.name == "none" else DISTANCINGS.get(params.name)
        self.method = params.name
        self.names = list(generic_dims)
        transforms = estimator is not None and estimator.transformed
        dim = getattr(params, "dim", 0)
        self.generic_tf = nn.ModuleDict(
            {m: nn.Linear(d, dim) for m, d in generic_dims.items()} if transforms else {})
        self.unique_tf = nn.ModuleDict(
            {m: nn.Linear(d, dim) for m, d in unique_dims.items()} if transforms else {})
        self.estimator: DistancingEstimator | None = (
            estimator(self.names, params, order) if estimator is not None else None)

    @property
    def active(self) -> bool:
        return self.estimator is not None

    def forward(
        self, generic: dict[str, torch.Tensor], unique: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Per-modality distancing losses, and the estimator's facts about this call
        (``clamped_<m>`` renamed ``clamped_distance_<m>``: the loss part that was
        clamped)."""
        if self.estimator is None:
            return {}, {}
        if not self.estimator.transformed:
            values = self.estimator(generic, unique)
        else:
            a = {m: self.generic_tf[m](generic[m]) for m in self.names}
            b = {m: self.unique_tf[m](unique[m]) for m in self.names}
            values = self.estimator(a, b)
        stats = {(f"clamped_distance_{k[8:]}" if k.startswith("clamped_") else k): v
                 for k, v in self.estimator.step_stats().items()}
        return values, stats

    def objectives(self) -> list[AuxiliaryObjective]:
        return self.estimator.objectives() if self.estimator is not None else []


__all__ = ["DISTANCINGS", "L1OUT_MAX", "Distancing", "DistancingEstimator",
           "DistancingParams", "GaussianQ", "HSICParams", "TransformedParams",
           "VariationalEstimator", "VariationalParams", "club_sample_bound",
           "distancing_registry", "l1out_bound", "neg_l2", "normalised_hsic",
           "pairwise_log_density", "q_nll", "register_distancing"]
