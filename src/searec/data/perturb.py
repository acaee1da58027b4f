"""Controlled damage to item features, for robustness experiments.

Each :class:`~searec.config.Perturbation` changes one modality of a loaded dataset:

- ``noise``: the features are replaced by Gaussian noise with the same per-column mean
  and standard deviation (the modality keeps its shape and scale, loses all signal);
- ``duplicate``: the modality becomes a copy of ``source`` (perfectly correlated with it),
  mapped through a fixed random Gaussian matrix when the widths differ;
- ``drop``: a seeded ``fraction`` of the items lose the modality, as when images or texts
  are missing: they get the mean feature vector (``fill=mean``, what MMRec's preprocessing
  imputes) or zeros (``fill=zero``; cosine kNN graphs refuse all-zero rows);
- ``scale``: the features are multiplied by ``factor``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from searec.config import Perturbation
from searec.data.dataset import Dataset
from searec.errors import ConfigError


def perturb_features(
    modalities: dict[str, np.ndarray], change: Perturbation
) -> np.ndarray:
    """The new feature matrix of ``change.modality``."""
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
        n = round(change.fraction * len(x))
        items = rng.choice(len(x), size=n, replace=False)
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
        modalities[change.modality] = perturb_features(modalities, change).astype(np.float32)
    return replace(dataset, modalities=modalities)
