"""Dataset policies: what ``data:`` in a config names, loaded and checked.

:func:`load_dataset` is the one way a config's dataset is made: the MMRec folder (or the
embedded synthetic data), the modality selection, feature perturbations, feature scaling
(``data.feature_norm``), the cold-start item draw (``data.cold_items``), and every check
that training relies on (a user with no negative
item to sample, the cold-user policy).
``searec data check`` calls the same function, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from searec.data.cold import with_cold_items
from searec.data.dataset import Dataset
from searec.data.missing import MissingFill, fill_missing
from searec.data.mmrec import load_mmrec
from searec.data.perturb import Perturbation, apply_perturbations
from searec.data.synthetic import SyntheticConfig, make_synthetic
from searec.errors import ConfigError, DataError
from searec.schema import StrictModel

FEATURE_NORMS = ("none", "l2", "standardize")


def normalize_features(x: np.ndarray, method: str, fit_rows: int | None = None
                       ) -> np.ndarray:
    """``x`` scaled by ``method`` (see ``data.feature_norm``), as float32; all-zero rows
    (items without this modality) stay zero, and constant columns stay constant.

    ``fit_rows``: standardize with the statistics of the first ``fit_rows`` rows only (the
    trained catalogue), so rows appended later are scaled as the training items were."""
    x = np.asarray(x, dtype=np.float32)
    if method == "none":
        return x
    present = x.any(axis=1)
    out = np.zeros_like(x)
    if method == "l2":
        norms = np.linalg.norm(x[present].astype(np.float64), axis=1, keepdims=True)
        out[present] = x[present] / norms
        return out
    fit = present.copy()
    if fit_rows is not None:
        fit[fit_rows:] = False
    reference = x[fit].astype(np.float64)
    std = reference.std(axis=0)
    out[present] = ((x[present].astype(np.float64) - reference.mean(axis=0))
                    / np.where(std > 0, std, 1.0))
    return out


class DataConfig(StrictModel):
    path: str | None = Field(
        None,
        description="MMRec folder (<name>.inter + *_feat.npy). None: the embedded synthetic "
        "dataset described by data.synthetic.",
    )
    name: str | None = Field(
        None, description="Stem of the .inter file. None: the folder's name, or its only .inter."
    )
    modalities: list[str] | None = Field(
        None,
        description="Modalities to use (file <m>_feat.npy). None: every *_feat.npy found.",
    )
    cold_users: Literal["error", "drop", "keep"] = Field(
        "error",
        description="Users with valid/test interactions but none in training: error refuses "
        "the dataset, drop leaves them out of evaluation (MMRec's behaviour), keep scores them.",
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    perturb: list[Perturbation] = Field(
        default_factory=list,
        description="Feature perturbations applied in order after loading (see "
        "docs/experiments.md, robustness): e.g. [{kind: noise, modality: image}].")
    cold_items: float = Field(
        0.0, ge=0.0, lt=1.0, description="Cold-start item protocol: this fraction of the "
        "items (seeded by data.cold_items_seed) is held out of training, so those items "
        "are known only by their features while training: as in ColdRec, half of them "
        "(cold-validation items) move every interaction to valid, the other half "
        "(cold-test items, disjoint) every interaction to test. Metrics are then also "
        "reported over warm and cold items alone (metrics.json valid_cold, test_warm, "
        "test_cold). 0: off.")
    cold_items_seed: int = Field(0, description="Seed of the cold-item draw.")
    missing_fill: MissingFill = Field(
        "none", description="What an all-zero feature row (an item without that modality) "
        "becomes, after perturbations and before feature_norm: none (stays zero); mean "
        "(the mean row of the items that have it); cross (predicted from the item's other "
        "modalities by a ridge regression fitted on the items that have every modality). "
        "Items added later (searec items add) are filled the same way, with the trained "
        "catalogue's statistics. searec.data.missing; SEA's own alternative: "
        "model.separation.fill_missing.")
    feature_norm: str | dict[str, str] = Field(
        "none", description="Per-modality feature scaling after perturbations: none; l2 "
        "(every item's row to unit length); standardize (every column to mean 0, std 1 "
        "over the items that have the modality). One method for all modalities, or "
        "modality -> method (unnamed modalities: none). All-zero rows (items without the "
        "modality) stay zero.")

    @field_validator("feature_norm", mode="before")
    @classmethod
    def _known_norm(cls, v: Any) -> Any:
        methods = list(v.values()) if isinstance(v, dict) else [v]
        if not methods or any(m not in FEATURE_NORMS for m in methods):
            raise ValueError(f"expected one of {', '.join(FEATURE_NORMS)}, or a mapping "
                             "modality -> one of them")
        return v


def load_dataset(cfg: DataConfig) -> Dataset:
    """The dataset a config names, with the cold-user policy applied."""
    if cfg.path is None:
        dataset = make_synthetic(cfg.synthetic)
        if cfg.modalities is not None:
            missing = [m for m in cfg.modalities if m not in dataset.modalities]
            if missing:
                raise DataError("synthetic", f"modalities {missing} not generated; "
                                f"data.synthetic.modalities has {dataset.modality_names}")
            dataset = dataset.with_modalities(cfg.modalities)
    else:
        dataset = load_mmrec(cfg.path, cfg.name, cfg.modalities)
    if cfg.cold_items > 0:  # first: a perturbation may apply to the new items only
        dataset = with_cold_items(dataset, cfg.cold_items, cfg.cold_items_seed)
    dataset = apply_perturbations(dataset, cfg.perturb)
    if cfg.missing_fill != "none":
        dataset = replace(dataset, modalities=fill_missing(dataset.modalities,
                                                           cfg.missing_fill))
    dataset = _normalize(dataset, cfg.feature_norm)
    full = np.flatnonzero(np.diff(dataset.train.indptr) >= dataset.n_items)
    if len(full):
        raise DataError(dataset.source or dataset.name, f"user {full[0]} has a training "
                        "interaction with every item: no negative item can be sampled")
    cold = dataset.cold_users()
    if len(cold):
        if cfg.cold_users == "error":
            raise DataError(
                dataset.source or dataset.name,
                f"{len(cold)} users have valid/test interactions but none in training "
                f"(first: user {cold[0]}); set data.cold_users=drop to leave them out of "
                "evaluation (MMRec's behaviour) or data.cold_users=keep to score them")
        if cfg.cold_users == "drop":
            dataset = dataset.without_users_in_eval(cold)
    return dataset


def feature_norm_methods(modalities: list[str], norm: str | dict[str, str]
                         ) -> dict[str, str]:
    """Modality -> its ``data.feature_norm`` method."""
    return ({m: norm for m in modalities} if isinstance(norm, str)
            else {m: norm.get(m, "none") for m in modalities})


def _normalize(dataset: Dataset, norm: str | dict[str, str]) -> Dataset:
    methods = feature_norm_methods(list(dataset.modalities), norm)
    if isinstance(norm, dict):
        unknown = sorted(set(norm) - set(dataset.modalities))
        if unknown:
            raise ConfigError(f"config key 'data.feature_norm': no modality {unknown[0]!r}; "
                              f"the dataset has {sorted(dataset.modalities)}")
    if all(v == "none" for v in methods.values()):
        return dataset
    return replace(dataset, modalities={m: normalize_features(f, methods[m])
                                        for m, f in dataset.modalities.items()})


def check_dataset(cfg: DataConfig) -> dict[str, Any]:
    """Every check that training runs on the dataset ``cfg`` names (:func:`load_dataset`),
    then its statistics, with ``cold_users`` counted whatever the policy: what
    ``searec data check`` reports."""
    # load keeping cold users so they can be counted, then apply the requested policy
    keep = "error" if cfg.cold_users == "error" else "keep"
    dataset = load_dataset(cfg.model_copy(update={"cold_users": keep}))
    cold = dataset.cold_users()
    if cfg.cold_users == "drop":
        dataset = dataset.without_users_in_eval(cold)
    return {**dataset.stats(), "cold_users": len(cold), "cold_user_policy": cfg.cold_users}

