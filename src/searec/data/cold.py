"""The cold-start item protocol: a seeded fraction of items held out of training entirely.

Every training interaction of a held-out item moves to validation or test (a seeded coin
per interaction), so such an item is seen only through its features while training and
appears only in valid/test. The evaluator then reports test metrics over all items, warm
items only and cold items only (cold: no training interaction, some valid/test one).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from searec.data.dataset import Dataset, interaction_matrix
from searec.errors import DataError


def hold_out_items(items: np.ndarray, labels: np.ndarray, n_items: int, fraction: float,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(new labels, held-out item indices) for interactions (``items``, ``labels``: 0
    train, 1 valid, 2 test): ``fraction`` of the items that have interactions, drawn with
    ``seed``, lose every training interaction to valid or test."""
    if not 0.0 < fraction < 1.0:
        raise DataError("cold items", f"the fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(np.bincount(items, minlength=n_items) > 0)
    n_cold = round(fraction * len(active))
    if n_cold == 0:
        raise DataError("cold items", f"a fraction {fraction} of {len(active)} items is no "
                        "item; raise it")
    cold = np.sort(rng.choice(active, size=n_cold, replace=False))
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[cold] = True
    moved = is_cold[items] & (labels == 0)
    out = labels.copy()
    out[moved] = rng.integers(1, 3, size=int(moved.sum()))  # valid (1) or test (2)
    return out, cold


def with_cold_items(dataset: Dataset, fraction: float, seed: int) -> Dataset:
    """``dataset`` with a seeded ``fraction`` of its items held out of training."""
    parts = [sp.coo_matrix(m) for m in (dataset.train, dataset.valid, dataset.test)]
    users = np.concatenate([p.row for p in parts]).astype(np.int64)
    items = np.concatenate([p.col for p in parts]).astype(np.int64)
    labels = np.concatenate([np.full(p.nnz, i) for i, p in enumerate(parts)])
    labels, _ = hold_out_items(items, labels, dataset.n_items, fraction, seed)
    splits = [interaction_matrix(users[labels == i], items[labels == i], dataset.n_users,
                                 dataset.n_items) for i in range(3)]
    return replace(dataset, train=splits[0], valid=splits[1], test=splits[2])
