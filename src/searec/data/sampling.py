"""Vectorised BPR sampling: shuffled positive pairs with uniformly drawn negatives."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp


class NegativeSampler:
    """Draw items a user has not interacted with in training, rejection-sampled in bulk."""

    def __init__(self, train: sp.csr_matrix) -> None:
        self.n_items = train.shape[1]
        coo = train.tocoo()
        self._keys = np.sort(coo.row.astype(np.int64) * self.n_items + coo.col)
        full = np.flatnonzero(np.diff(train.indptr) >= self.n_items)
        if len(full):
            raise ValueError(f"user {full[0]} interacted with every item: no negative exists")

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.n_items + items
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1)
        return self._keys[pos] == keys

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        neg = rng.integers(0, self.n_items, size=len(users))
        redo = np.flatnonzero(self.is_positive(users, neg))
        while len(redo):
            neg[redo] = rng.integers(0, self.n_items, size=len(redo))
            redo = redo[self.is_positive(users[redo], neg[redo])]
        return neg


def bpr_batches(
    users: np.ndarray,
    items: np.ndarray,
    sampler: NegativeSampler | None,
    batch_size: int,
    rng: np.random.Generator,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of (users, positives, negatives) batches over all training pairs, shuffled.

    Without a sampler (models that train on positive pairs alone), the negatives are
    empty arrays."""
    order = rng.permutation(len(users))
    negatives = (sampler.sample(users[order], rng) if sampler is not None
                 else np.empty(0, dtype=items.dtype))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield users[idx], items[idx], negatives[start : start + batch_size]
