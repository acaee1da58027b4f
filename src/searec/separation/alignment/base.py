"""The contract of an alignment estimator, and the registry that names them.

An alignment estimator scores paired rows (row i of ``za`` and of ``zb`` are the same
item, seen by two modalities) with a loss whose minimisation maximises a lower bound on
I(a; b). It is one file: a class with a ``name`` and its settings (``Params``, the config
section ``model.separation.alignment``), registered with :func:`register_alignment`, whose
``forward`` returns the loss and whose ``lower_bound`` says what the loss implies about
the mutual information (in nats).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from searec.separation.registry import EstimatorParams, EstimatorRegistry


class AlignmentParams(EstimatorParams):
    """The section ``model.separation.alignment``: what every alignment estimator has
    (each modality's generic part goes through a projection head before it)."""

    name: str = Field("solosim", description="The estimator: a registered alignment "
                      "estimator, or none (off).")
    head_hidden: int = Field(64, gt=0, description="Projection head hidden width.")
    head_out: int = Field(32, gt=0, description="Projection head output width.")


class ContrastiveParams(AlignmentParams):
    """Settings of a contrastive alignment estimator."""

    temperature: float = Field(0.2, gt=0, description="Contrastive temperature tau.")


class AlignmentEstimator(nn.Module):
    """Loss on paired (n, d) projections of two modalities' generic parts."""

    name: ClassVar[str]
    Params: ClassVar[type[AlignmentParams]] = AlignmentParams

    def __init__(self, params: AlignmentParams | None = None) -> None:
        super().__init__()
        self.params = params if params is not None else type(self).Params(name=self.name)

    def forward(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        """The loss to minimise (a scalar); gradients reach both inputs."""
        raise NotImplementedError

    def lower_bound(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        """The lower bound on I(a; b) that this loss implies; for the InfoNCE family
        log(n) - loss (van den Oord et al., 2018), so never above log(n)."""
        return math.log(len(za)) - self(za, zb)


ALIGNMENTS: EstimatorRegistry[AlignmentEstimator] = EstimatorRegistry(
    "alignment", AlignmentParams, default="solosim")
# Class decorator: make an alignment estimator available as ``alignment: <name>``.
register_alignment = ALIGNMENTS.register


def alignment_registry() -> dict[str, type[AlignmentEstimator]]:
    return ALIGNMENTS.copy()
