"""The contract of a distancing estimator, and the registry that names them.

A distancing estimator takes, per modality m, paired rows x_m (the transformed generic
part) and y_m (the transformed unique part) of the same items and returns one value per
modality that the model minimises: an upper bound on I(x_m; y_m), or a proxy for it.
It is one file: a class with a ``name``, registered with :func:`register_distancing`. An
estimator with a network of its own to fit (CLUB's variational q) declares that fitting
step as an :class:`~searec.optim.AuxiliaryObjective`; its own parameters never receive
gradient from the values it returns, and the trainer owns the optimiser that fits them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from searec.optim import AuxiliaryObjective
from searec.separation.registry import EstimatorRegistry


@dataclass(frozen=True)
class VariationalSettings:
    """How an estimator with a variational network q fits it (ignored by the others)."""

    hidden: int = 8  # hidden width of q's two MLPs
    steps: int = 5  # q updates after every training step
    lr: float = 1e-4  # q's Adam rate
    pairs: Literal["within", "reference"] = "within"  # what q is fitted to
    order: tuple[str, ...] | None = None  # reference pairs (a, b): q models q(b | a)
    standardize: bool = False  # q sees both parts scaled by their batch statistics


class DistancingEstimator(nn.Module):
    """Per-modality values to minimise, from paired (n, dim) parts of each modality."""

    name: ClassVar[str]
    # "upper_bound": the value bounds I(x; y) from above where the estimator fits;
    # "proxy": it only moves with the dependence (then ``value_range`` says its range)
    kind: ClassVar[Literal["upper_bound", "proxy"]] = "upper_bound"
    value_range: ClassVar[tuple[float, float] | None] = None
    # True: Distancing hands in each modality's parts mapped to one common width by its
    # own two learned linear transforms (what CLUB's q needs); False: the parts themselves
    transformed: ClassVar[bool] = True

    def __init__(self, modalities: list[str], dim: int,
                 settings: VariationalSettings | None = None) -> None:
        super().__init__()
        self.names = list(modalities)
        self.dim = dim
        self.settings = settings or VariationalSettings()

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


DISTANCINGS: EstimatorRegistry[DistancingEstimator] = EstimatorRegistry("distancing")
# Class decorator: make a distancing estimator available as ``distancing: <name>``.
register_distancing = DISTANCINGS.register


def distancing_registry() -> dict[str, type[DistancingEstimator]]:
    return DISTANCINGS.copy()
