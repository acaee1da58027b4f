"""The contract of an alignment estimator, and the registry that names them.

An alignment estimator scores paired rows (row i of ``za`` and of ``zb`` are the same
item, seen by two modalities) with a loss whose minimisation maximises a lower bound on
I(a; b). It is one file: a class with a ``name``, registered with
:func:`register_alignment`, whose ``forward`` returns the loss and whose ``lower_bound``
says what the loss implies about the mutual information (in nats).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from searec.separation.registry import EstimatorRegistry


class AlignmentEstimator(nn.Module):
    """Loss on paired (n, d) projections of two modalities' generic parts."""

    name: ClassVar[str]

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        """The loss to minimise (a scalar); gradients reach both inputs."""
        raise NotImplementedError

    def lower_bound(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        """The lower bound on I(a; b) that this loss implies; for the InfoNCE family
        log(n) - loss (van den Oord et al., 2018), so never above log(n)."""
        return math.log(len(za)) - self(za, zb)


ALIGNMENTS: EstimatorRegistry[AlignmentEstimator] = EstimatorRegistry("alignment")
# Class decorator: make an alignment estimator available as ``alignment: <name>``.
register_alignment = ALIGNMENTS.register


def alignment_registry() -> dict[str, type[AlignmentEstimator]]:
    return ALIGNMENTS.copy()
