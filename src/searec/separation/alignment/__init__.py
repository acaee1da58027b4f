"""Alignment across modalities: maximise a lower bound on I(generic_a; generic_b).

Each estimator is one module of this package, registered by name (``solosim``,
``infonce``); :class:`Alignment` projects every modality's generic part through its own
head and applies the chosen estimator to every ordered pair of modalities.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from searec.errors import ConfigError
from searec.separation.alignment import infonce, solosim  # noqa: F401  (registration)
from searec.separation.alignment.base import (
    ALIGNMENTS,
    AlignmentEstimator,
    AlignmentParams,
    ContrastiveParams,
    alignment_registry,
    register_alignment,
)
from searec.separation.alignment.infonce import infonce_loss
from searec.separation.alignment.solosim import solosim_loss


class ProjectionHead(nn.Module):
    """Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear, L2-normalised output."""

    def __init__(self, in_dim: int, hidden: int = 64, out: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=1)


def ordered_pairs(names: list[str], order: list[str] | None = None) -> list[tuple[str, str]]:
    """Every unordered pair of modalities once, as (a, b) with a before b in ``order``
    (default: ``names``' own order). In a pair, a is the anchor of a one-direction loss.
    One modality has no pairs (whatever ``order`` says)."""
    if len(names) < 2:
        return []
    order = list(names) if order is None else list(order)
    if sorted(order) != sorted(names):
        raise ConfigError(f"config key 'model.separation.pair_order': must name each "
                          f"modality {list(names)} once, got {order}")
    return list(itertools.combinations(order, 2))


class Alignment(nn.Module):
    """Aligns the generic parts of every pair of modalities (mean over pairs).

    With three or more modalities every pair contributes one term; the loss is their mean,
    so its scale does not grow with the number of modalities. The estimator and its
    settings are its section (``params``); name ``none`` (or a single modality) turns it
    off. ``order``: the modality order of the pairs (``model.separation.pair_order``).
    """

    def __init__(self, generic_dims: dict[str, int], params: AlignmentParams | str = "solosim",
                 order: list[str] | None = None) -> None:
        super().__init__()
        params = ALIGNMENTS.section(params)
        estimator = None if params.name == "none" else ALIGNMENTS.get(params.name)
        self.method = params.name
        self.names = list(generic_dims)
        self.pairs = ordered_pairs(self.names, order)
        active = params.name != "none" and self.pairs
        self.heads = nn.ModuleDict(
            {m: ProjectionHead(d, params.head_hidden, params.head_out)
             for m, d in generic_dims.items()} if active else {})
        self.estimator: AlignmentEstimator | None = (
            estimator(params) if estimator is not None and active else None)

    @property
    def active(self) -> bool:
        return self.estimator is not None

    def forward(self, generic: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.estimator is None:
            return next(iter(generic.values())).new_zeros(())
        z = {m: self.heads[m](g) for m, g in generic.items()}
        terms = [self.estimator(z[a], z[b]) for a, b in self.pairs]
        return torch.stack(terms).mean()


__all__ = ["ALIGNMENTS", "Alignment", "AlignmentEstimator", "AlignmentParams",
           "ContrastiveParams", "ProjectionHead", "alignment_registry", "infonce_loss",
           "ordered_pairs", "register_alignment", "solosim_loss"]
