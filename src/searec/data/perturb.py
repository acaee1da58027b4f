"""Controlled damage to item features, for robustness experiments.

Each :class:`Perturbation` changes one modality of a loaded dataset:

- ``noise``: the features are replaced by Gaussian noise with the same per-column mean
  and standard deviation (the modality keeps its shape and scale, loses all signal);
- ``duplicate``: the modality becomes a copy of ``source`` (perfectly correlated with it),
  mapped through a fixed random Gaussian matrix when the widths differ;
- ``drop``: a seeded ``fraction`` of the items (``items: new``: of the items without
  training interactions, as when only newly added items lack an image) lose the
  modality, as when images or texts are missing: they get the mean feature vector
  (``fill=mean``, what MMRec's preprocessing imputes) or zeros (``fill=zero``: such items
  have no neighbours in that modality's cosine kNN graph);
- ``scale``: the features are multiplied by ``factor``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from searec.data.dataset import Dataset
from searec.errors import ConfigError
from searec.schema import StrictModel


class Perturbation(StrictModel):
    """One change to a modality's item features, applied after loading (robustness runs)."""

    kind: Literal["noise", "duplicate", "drop", "scale"] = Field(
        description="noise: replace with Gaussian noise of the same per-column mean and std; "
        "duplicate: replace with a copy of modality `source` (through a fixed random linear "
        "map when widths differ); drop: zero (or mean-fill) the features of a `fraction` of "
        "items; scale: multiply by `factor`.")
    modality: str = Field(description="The modality changed.")
    source: str | None = Field(None, description="duplicate: the modality copied.")
    fraction: float = Field(0.5, gt=0, le=1, description="drop: share of items affected.")
    fill: Literal["mean", "zero"] = Field("mean", description="drop: value given to them: the "
                                          "mean feature vector (as MMRec imputes missing "
                                          "features) or zeros (as a missing image: no "
                                          "neighbours in that modality's kNN graph).")
    items: Literal["all", "new"] = Field(
        "all", description="drop: the items `fraction` is a share of. all: every item; "
        "new: the items without training interactions (under data.cold_items, the "
        "held-out cold items): the model trains on complete features and meets the "
        "missing modality only on new items.")
    factor: float = Field(10.0, gt=0, description="scale: the multiplier.")
    seed: int = Field(0, description="Seed of the noise, the items dropped, the linear map.")

    @model_validator(mode="after")
    def _source_for_duplicate(self) -> Perturbation:
        if (self.kind == "duplicate") != (self.source is not None):
            raise ValueError("'source' is required by kind=duplicate and only by it")
        if self.source == self.modality:
            raise ValueError("'source' must differ from 'modality'")
        if self.items != "all" and self.kind != "drop":
            raise ValueError("'items' applies to kind=drop only")
        return self


def perturb_features(
    modalities: dict[str, np.ndarray], change: Perturbation,
    new_items: np.ndarray | None = None,
) -> np.ndarray:
    """The new feature matrix of ``change.modality``; ``new_items``: the items without
    training interactions (needed by ``items: new``)."""
    x = modalities[change.modality]
    rng = np.random.default_rng(change.seed)
    if change.kind == "noise":
        noise = rng.standard_normal(x.shape).astype(np.float32)
        return noise * x.std(axis=0, keepdims=True) + x.mean(axis=0, keepdims=True)
    if change.kind == "duplicate":
        src = modalities[change.source]  # type: ignore[index]
        if src.shape[1] == x.shape[1]:
            return src.copy()
        proj = rng.standard_normal((src.shape[1], x.shape[1])).astype(np.float32)
        return src @ (proj / np.sqrt(src.shape[1]))
    if change.kind == "drop":
        out = x.copy()
        pool = np.arange(len(x)) if change.items == "all" else np.asarray(new_items)
        n = round(change.fraction * len(pool))
        items = pool[rng.choice(len(pool), size=n, replace=False)]
        out[items] = x.mean(axis=0) if change.fill == "mean" else 0.0
        return out
    return x * np.float32(change.factor)


def apply_perturbations(dataset: Dataset, changes: list[Perturbation]) -> Dataset:
    """A copy of ``dataset`` with every change applied in order."""
    if not changes:
        return dataset
    modalities = dict(dataset.modalities)
    for i, change in enumerate(changes):
        for key, name in (("modality", change.modality), ("source", change.source)):
            if name is not None and name not in modalities:
                raise ConfigError(f"config key 'data.perturb[{i}].{key}': no modality "
                                  f"{name!r}; the dataset has {sorted(modalities)}")
        new_items = dataset.cold_items() if change.items == "new" else None
        if new_items is not None and not len(new_items):
            raise ConfigError(f"config key 'data.perturb[{i}].items': new, but every item "
                              "has training interactions; hold some out with "
                              "data.cold_items")
        modalities[change.modality] = perturb_features(modalities, change,
                                                       new_items).astype(np.float32)
    return replace(dataset, modalities=modalities)
