"""The cold-item path shared by every model that reads item features.

An item without training interactions gets, from a graph model's forward pass, a
representation built from its features alone: no collaborative propagation reaches it,
so it scores on another scale than the warm items and never enters a user's top-k
(docs/results.md, cold-start items). The path here gives such an item a representation on
the warm items' footing instead:

- a mapper g (Linear -> leaky_relu -> Linear over the item's standardised, concatenated
  modality features) is regressed onto the warm items' trained representations, as in
  DeepMusic (van den Oord et al., 2013), optionally with a ranking term against the
  trained warm items for the frozen users (``rank_weight``, after ALDI, Huang et al. 2023);
- its output is calibrated, ``anchor_scale * mu + spread_scale * (g(f) - mu)`` with mu the
  warm items' mean representation, so that cold items compete with warm ones in one
  ranking; the two scales are chosen on validation (searec.training.cold_start).

The mapper is fitted once after training, on the best checkpoint, and saved with the
model; :meth:`ColdItemMapper.represent` then maps any item's features, one item at a time
or many: an item's representation never depends on the others in the call (what
``searec items add`` and ``/items/score`` rely on).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from searec.schema import StrictModel


class ColdStartParams(StrictModel):
    """How items without training interactions are represented."""

    method: Literal["mapper", "none"] = Field(
        "mapper", description="mapper: a feature-to-representation mapper regressed onto "
        "the warm items' trained representations after training, calibrated on validation "
        "(searec.models.cold); used for every item without training interactions (cold "
        "items, items added later). none: the backbone's own forward pass for such items "
        "(graph models then rank them below every warm item; POST /items/score is not "
        "served). Default mapper: on TikTok and ml100k (20% cold items, five seeds) it "
        "lifts the cold items' validation recall@20 at the calibrated warm cost "
        "(docs/results.md, cold-item path).")
    hidden: int = Field(512, gt=0, description="mapper: hidden width.")
    steps: int = Field(500, gt=0, description="mapper: Adam steps of the regression.")
    batch_size: int = Field(1024, gt=0, description="mapper: warm items per step.")
    lr: float = Field(1e-3, gt=0, description="mapper: Adam learning rate.")
    rank_weight: float = Field(
        0.0, ge=0.0, description="mapper: weight of a ranking term added to the "
        "regression, as in ALDI's ranking distillation: for sampled training "
        "interactions (u, i) of the fitted items, the mapped item i must outscore a "
        "random fitted item j in its trained representation, for the frozen user u "
        "(BPR). 0: the regression alone (DeepMusic).")
    holdout: float = Field(
        0.1, ge=0.0, lt=1.0, description="mapper: where no item without training "
        "interactions has validation interactions to calibrate on (an ordinary run, not "
        "the cold-start protocol), this share of the warm items is left out of the "
        "regression and stands in for cold items while calibrating.")
    calibrate_for: Literal["cold", "all"] = Field(
        "cold", description="mapper: what the calibration maximises on validation. "
        "cold: the cold items' metric (train.valid_metric over their interactions, ranked "
        "in the whole catalogue) while the warm items' stays within max_warm_loss of its "
        "value without the path: cold items reach users at a bounded cost. all: the "
        "metric over all items (cold items shown only where they beat the warm items "
        "they would displace; on ml100k that is nowhere, docs/results.md).")
    max_warm_loss: float = Field(
        0.02, ge=0.0, lt=1.0, description="mapper, calibrate_for=cold: the largest "
        "relative loss of the warm items' validation metric the calibration accepts.")
    anchor_scales: list[float] = Field(
        [0.8, 0.9, 1.0, 1.1, 1.2], min_length=1, description="mapper: calibration "
        "candidates for the scale of the warm items' mean representation in a cold item's.")
    spread_scales: list[float] = Field(
        [0.75, 0.85, 0.95, 1.0, 1.05, 1.15, 1.25, 1.5, 1.75, 2.0], min_length=1,
        description="mapper: calibration candidates for the scale of a cold item's "
        "deviation from that mean.")


class ColdItemMapper(nn.Module):
    """Item features -> a representation on the warm items' footing (see the module
    docstring). Its state (weights, input statistics, calibration) is saved with the model;
    ``fitted`` is 0 until searec.training.cold_start has fitted it."""

    def __init__(self, feature_dims: dict[str, int], rep_dim: int, hidden: int) -> None:
        super().__init__()
        self.names = list(feature_dims)
        width = sum(feature_dims.values())
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.LeakyReLU(),
                                 nn.Linear(hidden, rep_dim))
        self.register_buffer("input_mean", torch.zeros(width))
        self.register_buffer("input_scale", torch.ones(width))
        self.register_buffer("anchor", torch.zeros(rep_dim))  # mu: warm items' mean
        self.register_buffer("calibration", torch.ones(2))  # anchor, spread scales
        self.register_buffer("fitted", torch.zeros((), dtype=torch.uint8))

    def reset_parameters(self, generator: torch.Generator) -> None:
        """nn.Linear's own initialisation, drawn from ``generator`` (a CPU generator) on
        the CPU and copied to the mapper's device: the fit then depends on the run's seed
        alone, on any device (refitting a finished run draws the same mapper)."""
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                weight = torch.empty(layer.weight.shape)
                nn.init.kaiming_uniform_(weight, a=5**0.5, generator=generator)
                bound = 1.0 / layer.in_features**0.5
                bias = torch.empty(layer.bias.shape).uniform_(-bound, bound,
                                                              generator=generator)
                with torch.no_grad():
                    layer.weight.copy_(weight)
                    layer.bias.copy_(bias)

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], feature_dims: dict[str, int]
                   ) -> ColdItemMapper | None:
        """The fitted mapper a model's state dict holds (None: none, or not fitted), on
        the CPU, without building the model."""
        prefix = "cold_mapper."
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if "net.2.weight" not in own or not int(own.get("fitted", 0)):
            return None
        rep_dim, hidden = own["net.2.weight"].shape
        mapper = cls(feature_dims, int(rep_dim), int(hidden))
        mapper.load_state_dict({k: v.cpu() for k, v in own.items()})
        return mapper

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def inputs(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The standardised, concatenated features the mapper reads."""
        x = torch.cat([features[m].float() for m in self.names], dim=1)
        return (x - self.input_mean) / self.input_scale

    def raw(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """g(f): the regression's output, before calibration."""
        return self.net(self.inputs(features))

    def calibrated(self, mapped: torch.Tensor, anchor_scale: float | torch.Tensor,
                   spread_scale: float | torch.Tensor) -> torch.Tensor:
        return anchor_scale * self.anchor + spread_scale * (mapped - self.anchor)

    @torch.no_grad()
    def represent(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Calibrated representations of the items whose feature rows are given."""
        if not self.is_fitted:
            raise RuntimeError("the cold-item mapper is not fitted (searec.training."
                               "cold_start.fit_cold_start fits it after training)")
        anchor_scale, spread_scale = self.calibration
        return self.calibrated(self.raw(features), anchor_scale, spread_scale)
