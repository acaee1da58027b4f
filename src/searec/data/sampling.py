"""Vectorised BPR sampling: shuffled positive pairs with uniformly drawn negatives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import scipy.sparse as sp


class NegativeSampler:
    """Draw items a user has not interacted with in training, rejection-sampled in bulk.

    ``pool``: "catalogue" draws from every item; "trained" only from items with at least
    one training interaction (MMRec's sampler), so items seen nowhere in training (cold
    items) are never pushed down as negatives."""

    def __init__(self, train: sp.csr_matrix,
                 pool: Literal["catalogue", "trained"] = "catalogue") -> None:
        self.n_items = train.shape[1]
        coo = train.tocoo()
        self._keys = np.sort(coo.row.astype(np.int64) * self.n_items + coo.col)
        if pool == "catalogue":
            self._candidates: np.ndarray | None = None  # every item: no lookup needed
            n_candidates = self.n_items
        elif pool == "trained":
            self._candidates = np.flatnonzero(np.bincount(coo.col, minlength=self.n_items))
            n_candidates = len(self._candidates)
        else:
            raise ValueError(f"pool must be 'catalogue' or 'trained', got {pool!r}")
        full = np.flatnonzero(np.diff(train.indptr) >= n_candidates)
        if len(full):
            which = "item" if pool == "catalogue" else "item that has training interactions"
            raise ValueError(f"user {full[0]} interacted with every {which}: no negative "
                             "exists")

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.n_items + items
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1)
        return self._keys[pos] == keys

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._candidates is None:
            return rng.integers(0, self.n_items, size=n)
        return self._candidates[rng.integers(0, len(self._candidates), size=n)]

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        neg = self._draw(len(users), rng)
        redo = np.flatnonzero(self.is_positive(users, neg))
        while len(redo):
            neg[redo] = self._draw(len(redo), rng)
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
