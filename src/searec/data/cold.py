"""The cold-start item protocol: a seeded fraction of items held out of training entirely.

As in ColdRec (GitHub YuanchenBei/ColdRec), the held-out items are split into two
disjoint halves: every interaction of a cold-validation item moves to validation and
every interaction of a cold-test item to test. Such an item is seen only through its
features while training, and cold-start settings are chosen on items that test never
sees. The evaluator reports metrics over all items, warm items only and cold items only
(cold: no training interaction, some valid/test one).
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
    ``seed``, are held out; every interaction of the first half of them (in a seeded
    order; the larger half when odd) moves to valid, every one of the rest to test."""
    if not 0.0 < fraction < 1.0:
        raise DataError("cold items", f"the fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(np.bincount(items, minlength=n_items) > 0)
    n_cold = round(fraction * len(active))
    if n_cold == 0:
        raise DataError("cold items", f"a fraction {fraction} of {len(active)} items is no "
                        "item; raise it")
    drawn = rng.choice(active, size=n_cold, replace=False)
    side = np.zeros(n_items, dtype=np.int64)  # 0: warm, 1: cold-validation, 2: cold-test
    side[drawn[: (n_cold + 1) // 2]] = 1
    side[drawn[(n_cold + 1) // 2 :]] = 2
    out = np.where(side[items] > 0, side[items], labels)
    return out, np.sort(drawn)


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
