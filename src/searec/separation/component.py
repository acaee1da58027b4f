"""The SEA separation component, usable by any backbone.

A backbone hands in each modality's raw item features; the component returns each
modality's projected representation p_m (what the backbone consumes) and, from the
generic and unique parts of p_m, the separation losses:

    separation = align_weight * alignment + distance_weight * mean_m distance_m

Its parameters are the nested config section ``model.separation`` (:class:`SeparationParams`);
alignment and distancing estimators are looked up by name in their registries
(:mod:`searec.separation.alignment`, :mod:`searec.separation.distancing`).
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from searec.optim import AuxiliaryObjective
from searec.schema import StrictModel
from searec.separation.alignment import ALIGNMENTS, Alignment
from searec.separation.distancing import DISTANCINGS, Distancing, VariationalSettings
from searec.separation.split import ModalitySplit


class SeparationParams(StrictModel):
    """Parameters of the separation component (shared by every backbone that uses it)."""

    split_ratio: float = Field(0.5, gt=0, lt=1, description="Share of p_m that is generic.")
    proj_dim: int | None = Field(
        None, gt=1, description="Width of p_m = Linear(f_m). None: the modality's feature "
        "width (the reference's d_m x d_m layer).")
    alignment: str = Field(
        "solosim", description="MI lower bound aligning generic parts across modalities: "
        f"a registered alignment estimator ({ALIGNMENTS.choices()}).")
    distancing: str = Field(
        "club", description="MI upper bound (or proxy) separating generic from unique: a "
        f"registered distancing estimator ({DISTANCINGS.choices()}).")
    pair_order: list[str] | None = Field(
        None, description="Modality order that forms the pairs (a, b): a anchors a "
        "one-direction alignment (solosim's softmax runs over b's items) and the "
        "reference's shared q models q(b | a). None: the dataset's modality order. The "
        "authors' code: [text, image].")
    align_weight: float = Field(0.012, ge=0, description="Weight of the alignment loss "
                                "(reference alpha).")
    distance_weight: float = Field(0.006, ge=0, description="Weight of the distancing loss "
                                   "(reference ureg).")
    temperature: float = Field(0.2, gt=0, description="Contrastive temperature tau.")
    align_hidden: int = Field(64, gt=0, description="Projection head hidden width.")
    align_out: int = Field(32, gt=0, description="Projection head output width.")
    distance_dim: int = Field(32, gt=0, description="Width of the transformed parts that "
                              "distancing compares.")
    q_hidden: int = Field(8, gt=0, description="Hidden width of CLUB's q networks.")
    q_steps: int = Field(5, ge=0, description="q updates per training batch (the "
                         "reference code uses 50; see docs/performance.md).")
    q_lr: float = Field(1e-4, gt=0, description="Learning rate of q's own Adam (the "
                        "reference uses its model rate, 1e-4).")
    q_pairs: Literal["within", "reference"] = Field(
        "within", description="within: one q per modality trained on its (generic, unique) "
        "pairs. reference: one shared q trained on cross-modal pairs (the authors' code; "
        "for parity runs only).")
    q_standardize: bool = Field(
        False, description="Standardise both parts (batch statistics, held constant) "
        "before CLUB's / L1Out's q: q's tanh-bounded log-variance can only fit variances in "
        "[e^-1, e], and the parts it is given start far below (about 0.01 to 0.13 per "
        "dimension on TikTok). The reference: false.")
    mi_items: Literal["all", "batch"] = Field(
        "batch", description="Items the MI losses see each step: batch (the batch's positive "
        "and negative items) or all (reference).")
    mi_max_items: int | None = Field(
        1024, gt=1, description="At most this many items (a random subset, drawn anew each "
        "step) enter the MI losses: contrastive alignment needs N x N logits, so its time "
        "and memory grow with N^2 (16 GB at N = 65,536). None: no cap (reference).")

    # checked when the config is read, not when the model is built: a typo is a config
    # error with a suggestion (estimators registered by plug-ins count: they load first)
    @field_validator("alignment")
    @classmethod
    def _known_alignment(cls, name: str) -> str:
        return ALIGNMENTS.check(name)

    @field_validator("distancing")
    @classmethod
    def _known_distancing(cls, name: str) -> str:
        return DISTANCINGS.check(name)


class Separation(nn.Module):
    """Split every modality into generic and unique parts; align and distance them."""

    def __init__(self, feature_dims: dict[str, int], params: SeparationParams) -> None:
        super().__init__()
        self.params = params
        self.names = list(feature_dims)
        self.split = nn.ModuleDict({
            m: ModalitySplit(d, params.proj_dim or d, params.split_ratio)
            for m, d in feature_dims.items()
        })
        generic = {m: s.generic_dim for m, s in self.split.items()}  # type: ignore[union-attr]
        unique = {m: s.unique_dim for m, s in self.split.items()}  # type: ignore[union-attr]
        method = params.alignment
        if len(self.names) < 2 and method != "none":
            warnings.warn(f"only one modality ({', '.join(self.names)}): alignment across "
                          "modalities is off", stacklevel=2)
            method = "none"
        order = params.pair_order  # checked where the pairs are formed (ordered_pairs)
        self.alignment = Alignment(generic, method, params.temperature, params.align_hidden,
                                   params.align_out, order)
        settings = VariationalSettings(params.q_hidden, params.q_steps, params.q_lr,
                                       params.q_pairs, tuple(order) if order else None,
                                       params.q_standardize)
        self.distancing = Distancing(generic, unique, params.distancing, params.distance_dim,
                                     settings)
        # the weighted terms of the last losses() call, as they entered the total
        self.last_terms: dict[str, torch.Tensor] = {}

    def out_dims(self) -> dict[str, int]:
        return {m: s.proj.out_features for m, s in self.split.items()}  # type: ignore[union-attr]

    def project(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """p_m = Linear(f_m) for every modality."""
        return {m: self.split[m](f) for m, f in features.items()}

    def losses(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Alignment and distancing terms on representations p_m (rows = the same items)."""
        generic, unique = {}, {}
        for m, x in p.items():
            generic[m], unique[m] = self.split[m].parts(x)  # type: ignore[operator]
        out: dict[str, torch.Tensor] = {}
        weighted: dict[str, torch.Tensor] = {}
        total = next(iter(p.values())).new_zeros(())
        if self.alignment.active:
            out["align"] = self.alignment(generic)
            weighted["align"] = self.params.align_weight * out["align"]
            total = total + weighted["align"]
        if self.distancing.active:
            per = self.distancing(generic, unique)
            for m, v in per.items():
                out[f"distance_{m}"] = v
            out["distance"] = torch.stack(list(per.values())).mean()
            weighted["distance"] = self.params.distance_weight * out["distance"]
            total = total + weighted["distance"]
        out["separation"] = total
        self.last_terms = weighted
        return out

    def step_stats(self) -> dict[str, torch.Tensor]:
        """Facts about the last :meth:`losses` call (e.g. whether a bound was clamped)."""
        return self.distancing.step_stats()

    def objectives(self) -> list[AuxiliaryObjective]:
        """What the component fits beside the model's loss (e.g. CLUB's q)."""
        return self.distancing.objectives()
