"""The contract of a distancing estimator, and the registry that names them.

A distancing estimator takes, per modality m, paired rows x_m (the transformed generic
part) and y_m (the transformed unique part) of the same items and returns one value per
modality that the model minimises: an upper bound on I(x_m; y_m), or a proxy for it.
It is one file: a class with a ``name`` and its settings (``Params``, the config section
``model.separation.distancing``), registered with :func:`register_distancing`. An
estimator with a network of its own to fit (CLUB's variational q) declares that fitting
step as an :class:`~searec.optim.AuxiliaryObjective`; its own parameters never receive
gradient from the values it returns, and the trainer owns the optimiser that fits them.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from searec.optim import AuxiliaryObjective
from searec.separation.registry import EstimatorParams, EstimatorRegistry


class DistancingParams(EstimatorParams):
    """The section ``model.separation.distancing``: which estimator, and its settings."""

    name: str = Field("club", description="The estimator: a registered distancing "
                      "estimator, or none (off).")


class TransformedParams(DistancingParams):
    """Settings of an estimator that compares the parts after Distancing's learned
    linear transforms to one common width."""

    dim: int = Field(32, gt=0, description="Width the generic and unique parts are "
                     "transformed to before they are compared.")


class DistancingEstimator(nn.Module):
    """Per-modality values to minimise, from paired (n, dim) parts of each modality."""

    name: ClassVar[str]
    Params: ClassVar[type[DistancingParams]] = TransformedParams
    # what to try when the estimator's bound is clamped in most steps (no gradient then)
    clamped_hint: ClassVar[str] = ""
    # "upper_bound": the value bounds I(x; y) from above where the estimator fits;
    # "proxy": it only moves with the dependence (then ``value_range`` says its range)
    kind: ClassVar[Literal["upper_bound", "proxy"]] = "upper_bound"
    value_range: ClassVar[tuple[float, float] | None] = None
    # True: Distancing hands in each modality's parts mapped to one common width by its
    # own two learned linear transforms (what CLUB's q needs); False: the parts themselves
    transformed: ClassVar[bool] = True

    def __init__(self, modalities: list[str], params: DistancingParams | None = None,
                 order: list[str] | None = None) -> None:
        """``params``: the estimator's section; ``order``: the modality order that forms
        cross-modal pairs (``model.separation.pair_order``), for estimators that use one."""
        super().__init__()
        self.names = list(modalities)
        self.params = params if params is not None else type(self).Params(name=self.name)
        self.order = order

    def forward(self, x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
        """One scalar per modality; gradients reach x and y, never the estimator's own
        fitted parameters."""
        raise NotImplementedError

    def objectives(self) -> list[AuxiliaryObjective]:
        """The estimator's own fitting steps (none by default)."""
        return []

    def step_stats(self) -> dict[str, torch.Tensor]:
        """Optional facts about the last call, logged per epoch (as their mean over steps):
        e.g. ``clamped_<m>`` (1 when the bound was clamped) or how well a fitted network
        fits. Detached scalars."""
        return {}


# hsic: where validation recall cannot tell it from the authors' CLUB, it is the one that
# separates (CLUB was clamped at 0 in most steps; docs/results.md, docs/sea.md)
DISTANCINGS: EstimatorRegistry[DistancingEstimator] = EstimatorRegistry(
    "distancing", DistancingParams, default="hsic")
# Class decorator: make a distancing estimator available as ``distancing: <name>``.
register_distancing = DISTANCINGS.register


def distancing_registry() -> dict[str, type[DistancingEstimator]]:
    return DISTANCINGS.copy()
