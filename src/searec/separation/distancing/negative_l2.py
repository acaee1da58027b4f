"""neg_l2: -||normalise(x) - normalise(y)||^2 / 4, a proxy in [-1, 0] with nothing to fit.

Minimising it pushes the two parts' directions apart. The reference's unnormalised
-MSE grows without bound; this form cannot.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from searec.separation.distancing.base import DistancingEstimator, register_distancing


def neg_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return -((F.normalize(a, dim=1) - F.normalize(b, dim=1)) ** 2).sum(dim=1).mean() / 4.0


@register_distancing
class NegL2(DistancingEstimator):
    """Negative squared distance of the unit-normalised parts (a proxy, in [-1, 0])."""

    name = "neg_l2"
    kind = "proxy"
    value_range = (-1.0, 0.0)

    def forward(self, x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
        return {m: neg_l2(x[m], y[m]) for m in self.names}
