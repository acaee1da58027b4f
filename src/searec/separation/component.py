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
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field, SerializeAsAny, field_validator, model_validator
from torch import nn

from searec.optim import AuxiliaryObjective
from searec.schema import StrictModel
from searec.separation.alignment import ALIGNMENTS, Alignment, AlignmentParams
from searec.separation.distancing import DISTANCINGS, Distancing, DistancingParams
from searec.separation.split import ModalitySplit

# Settings that moved from model.separation into an estimator's own section
MOVED_TO_SECTIONS = {
    "temperature": ("alignment", "temperature"), "align_hidden": ("alignment", "head_hidden"),
    "align_out": ("alignment", "head_out"), "distance_dim": ("distancing", "dim"),
    **{k: ("distancing", k) for k in ("q_hidden", "q_steps", "q_lr", "q_pairs",
                                      "q_standardize")}}


def migrate_flat_settings(section: dict[str, Any]) -> dict[str, Any]:
    """A separation section written before estimators owned their settings (searec 0.2's
    run folders: flat ``q_steps``, ``temperature``, ...), with each moved key in its
    estimator's section. Only where the estimator takes the setting: the old flat keys
    were written out for every estimator."""
    out = {k: v for k, v in section.items() if k not in MOVED_TO_SECTIONS}
    for kind, registry in (("alignment", ALIGNMENTS), ("distancing", DISTANCINGS)):
        chosen = out.get(kind, registry.default)
        estimator = {"name": chosen} if isinstance(chosen, str) else dict(chosen)
        try:
            takes = registry.params_class(estimator.setdefault("name", registry.default))
        except (ValueError, TypeError):
            takes = None  # an unknown estimator: validation says so
        for old, (where, new) in MOVED_TO_SECTIONS.items():
            if where == kind and old in section and takes and new in takes.model_fields:
                estimator.setdefault(new, section[old])
        out[kind] = estimator
    return out


class SeparationParams(StrictModel):
    """Parameters of the separation component (shared by every backbone that uses it)."""

    split_ratio: float = Field(0.5, gt=0, lt=1, description="Share of p_m that is generic.")
    proj_dim: int | None = Field(
        None, gt=1, description="Width of p_m = Linear(f_m). None: the modality's feature "
        "width (the reference's d_m x d_m layer).")
    fill_missing: bool = Field(
        False, description="Items without a modality (an all-zero feature row): their p_m "
        "is filled in the model, the generic part predicted from the item's other "
        "modalities' generic parts (a ridge regression refitted at each forward pass on "
        "the items that have every modality), the unique part the mean unique part of the "
        "items that have the modality. Items missing more than one modality get both "
        "means. Instead of data.missing_fill, which fills the features themselves.")
    alignment: SerializeAsAny[AlignmentParams] = Field(
        default_factory=lambda: ALIGNMENTS.section(ALIGNMENTS.default),
        description="MI lower bound aligning generic parts across modalities: a section "
        "{name: <estimator>, <its settings>} or just the name of a registered alignment "
        f"estimator ({ALIGNMENTS.choices()}); each estimator's settings are listed below.")
    distancing: SerializeAsAny[DistancingParams] = Field(
        default_factory=lambda: DISTANCINGS.section(DISTANCINGS.default),
        description="MI upper bound (or proxy) separating generic from unique: a section "
        "{name: <estimator>, <its settings>} or just the name of a registered distancing "
        f"estimator ({DISTANCINGS.choices()}); each estimator's settings are listed below.")
    pair_order: list[str] | None = Field(
        None, description="Modality order that forms the pairs (a, b): a anchors a "
        "one-direction alignment (solosim's softmax runs over b's items) and the "
        "reference's shared q models q(b | a). None: the dataset's modality order. The "
        "authors' code: [text, image].")
    align_weight: float = Field(0.012, ge=0, description="Weight of the alignment loss "
                                "(reference alpha).")
    distance_weight: float = Field(
        0.1, ge=0, description="Weight of the distancing loss: 0.1 for the default hsic "
        "(a normalised value in [0, 1]); the authors' ureg with CLUB is 0.006 (the "
        "reference preset: 0.003, for their halved bound).")
    mi_items: Literal["all", "batch"] = Field(
        "batch", description="Items the MI losses see each step: batch (the batch's positive "
        "and negative items) or all (reference).")
    mi_max_items: int | None = Field(
        256, gt=1, description="At most this many items (a random subset, drawn anew each "
        "step) enter the MI losses: contrastive alignment needs N x N logits, so its time "
        "and memory grow with N^2 (16 GB at N = 65,536). None: no cap (reference). 256 "
        "ranked level with 1,024 over ten seeds on TikTok and ml100k at 0.84x SEA's "
        "TikTok epoch (docs/results.md, \"Computing less\").")

    @model_validator(mode="before")
    @classmethod
    def _moved_settings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            moved = [k for k in value if k in MOVED_TO_SECTIONS]
            if moved:
                kind, key = MOVED_TO_SECTIONS[moved[0]]
                raise ValueError(f"{moved[0]!r} moved into the {kind} estimator's own "
                                 f"section: model.separation.{kind}.{key} (e.g. "
                                 f"model.separation.{kind}.{key}=...)")
        return value

    # checked when the config is read, not when the model is built: a typo is a config
    # error with a suggestion (estimators registered by plug-ins count: they load first)
    @field_validator("alignment", mode="before")
    @classmethod
    def _alignment_section(cls, value: Any) -> AlignmentParams:
        return ALIGNMENTS.section(value)  # type: ignore[return-value]

    @field_validator("distancing", mode="before")
    @classmethod
    def _distancing_section(cls, value: Any) -> DistancingParams:
        return DISTANCINGS.section(value)  # type: ignore[return-value]


@dataclass(frozen=True)
class SeparationLosses:
    """What :meth:`Separation.losses` computed on one batch."""

    total: torch.Tensor  # align_weight * align + distance_weight * distance
    parts: dict[str, torch.Tensor]  # align, distance_<m>, distance (unweighted)
    weighted: dict[str, torch.Tensor]  # align, distance as they entered ``total``
    stats: dict[str, torch.Tensor]  # the distancing estimator's facts (clamped_distance_<m>)


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
        alignment = params.alignment
        if len(self.names) < 2 and alignment.name != "none":
            warnings.warn(f"only one modality ({', '.join(self.names)}): alignment across "
                          "modalities is off", stacklevel=2)
            alignment = ALIGNMENTS.section("none")
        order = params.pair_order  # checked where the pairs are formed (ordered_pairs)
        self.alignment = Alignment(generic, alignment, order)  # type: ignore[arg-type]
        self.distancing = Distancing(generic, unique, params.distancing, order)

    def out_dims(self) -> dict[str, int]:
        return {m: s.proj.out_features for m, s in self.split.items()}  # type: ignore[union-attr]

    def project(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """p_m = Linear(f_m) for every modality."""
        return {m: self.split[m](f) for m, f in features.items()}

    def losses(self, p: dict[str, torch.Tensor]) -> SeparationLosses:
        """Alignment and distancing terms on representations p_m (rows = the same items)."""
        generic, unique = {}, {}
        for m, x in p.items():
            generic[m], unique[m] = self.split[m].parts(x)  # type: ignore[operator]
        parts: dict[str, torch.Tensor] = {}
        weighted: dict[str, torch.Tensor] = {}
        stats: dict[str, torch.Tensor] = {}
        total = next(iter(p.values())).new_zeros(())
        if self.alignment.active:
            parts["align"] = self.alignment(generic)
            weighted["align"] = self.params.align_weight * parts["align"]
            total = total + weighted["align"]
        if self.distancing.active:
            per, stats = self.distancing(generic, unique)
            for m, v in per.items():
                parts[f"distance_{m}"] = v
            parts["distance"] = torch.stack(list(per.values())).mean()
            weighted["distance"] = self.params.distance_weight * parts["distance"]
            total = total + weighted["distance"]
        return SeparationLosses(total, parts, weighted, stats)

    def hints(self) -> dict[str, str]:
        """What to try when a separation term or part turns out inert."""
        out = {term: f"raise model.separation.{term}_weight" for term in ("align", "distance")}
        estimator = self.distancing.estimator
        if estimator is not None and estimator.clamped_hint:
            out.update({f"distance_{m}": estimator.clamped_hint for m in self.names})
        return out

    def objectives(self) -> list[AuxiliaryObjective]:
        """What the component fits beside the model's loss (e.g. CLUB's q)."""
        return self.distancing.objectives()
