"""Alignment across modalities: maximise a lower bound on I(generic_a; generic_b).

- ``solosim``: the reference's Solosimloss, one direction: for each item i,
  -log softmax_j(cos(z_a,i, z_b,j) / tau)[i].
- ``infonce``: the symmetric InfoNCE loss (both directions, averaged).

For either, log(N) - loss is a lower bound on the mutual information (van den Oord et al.,
2018), so the bound can never exceed log(N) for N paired samples.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

ALIGNMENTS = ("solosim", "infonce", "none")


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


def solosim_loss(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> torch.Tensor:
    """One-direction contrastive loss; positives on the diagonal."""
    logits = F.normalize(za, dim=1) @ F.normalize(zb, dim=1).T / temperature
    return -torch.diagonal(F.log_softmax(logits, dim=1)).mean()


def infonce_loss(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: mean of the a->b and b->a directions."""
    logits = F.normalize(za, dim=1) @ F.normalize(zb, dim=1).T / temperature
    target = torch.arange(len(za), device=za.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def mi_lower_bound(loss: torch.Tensor, n: int) -> torch.Tensor:
    """The InfoNCE bound on I(a; b) implied by a contrastive loss over n pairs."""
    return torch.log(torch.tensor(float(n))) - loss


class Alignment(nn.Module):
    """Aligns the generic parts of every pair of modalities (mean over pairs).

    With three or more modalities every unordered pair (a, b), a before b in modality
    order, contributes one term; the loss is their mean, so its scale does not grow with
    the number of modalities.
    """

    def __init__(self, generic_dims: dict[str, int], method: str = "solosim",
                 temperature: float = 0.2, hidden: int = 64, out: int = 32) -> None:
        super().__init__()
        if method not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {method!r}")
        self.method = method
        self.temperature = temperature
        self.names = list(generic_dims)
        self.pairs = list(itertools.combinations(self.names, 2))
        active = method != "none" and self.pairs
        self.heads = nn.ModuleDict(
            {m: ProjectionHead(d, hidden, out) for m, d in generic_dims.items()} if active else {}
        )

    @property
    def active(self) -> bool:
        return len(self.heads) > 0

    def forward(self, generic: dict[str, torch.Tensor]) -> torch.Tensor:
        if not self.active:
            return next(iter(generic.values())).new_zeros(())
        z = {m: self.heads[m](g) for m, g in generic.items()}
        fn = solosim_loss if self.method == "solosim" else infonce_loss
        terms = [fn(z[a], z[b], self.temperature) for a, b in self.pairs]
        return torch.stack(terms).mean()
