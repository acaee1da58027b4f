"""Generic / unique split of a modality representation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ModalitySplit(nn.Module):
    """p = Linear(f); generic = first ``round(ratio * dim)`` values of p, unique = the rest.

    The whole of p is what a backbone consumes as the modality's item representation; the
    two parts are what the separation losses act on.
    """

    def __init__(self, in_dim: int, out_dim: int, ratio: float = 0.5) -> None:
        super().__init__()
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"split ratio must be in (0, 1), got {ratio}")
        self.proj = nn.Linear(in_dim, out_dim)
        self.generic_dim = max(1, min(out_dim - 1, round(ratio * out_dim)))
        self.unique_dim = out_dim - self.generic_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)

    def project_through(self, layer: nn.Linear, features: torch.Tensor) -> torch.Tensor:
        """layer(p) without p when that is cheaper: p = Linear(f) is linear, so layer(p) is
        one linear map of f with weight W_layer W_proj, d x h multiply-adds per row against
        d x d_p + d_p x h (half of them with the default d_p = d). Equal up to rounding."""
        d_in, d_p, h = self.proj.in_features, self.proj.out_features, layer.out_features
        if d_in * h < d_p * (d_in + h):
            bias = layer.weight @ self.proj.bias
            return F.linear(features, layer.weight @ self.proj.weight,
                            bias if layer.bias is None else layer.bias + bias)
        return layer(self.proj(features))

    def parts(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return p[:, : self.generic_dim], p[:, self.generic_dim :]
