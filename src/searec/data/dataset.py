"""The in-memory dataset every model and evaluator works on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from searec.data.idmap import IdMap


def interaction_matrix(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """Binary users x items CSR matrix with sorted indices."""
    data = np.ones(len(users), dtype=np.float32)
    mat = sp.csr_matrix((data, (users, items)), shape=(n_users, n_items), dtype=np.float32)
    mat.sum_duplicates()
    mat.data[:] = 1.0
    mat.sort_indices()
    return mat


@dataclass(frozen=True)
class Dataset:
    """Users, items, train/valid/test interactions (binary CSR) and item modality features.

    ``modalities`` maps a modality name to a float32 array of shape (n_items, d); row i is
    item i. Any number of modalities (including none) is allowed. ``user_map`` and
    ``item_map``, when known, give the original ids behind the indices.
    """

    name: str
    n_users: int
    n_items: int
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    modalities: dict[str, np.ndarray] = field(default_factory=dict)
    source: str | None = None
    user_map: IdMap | None = None
    item_map: IdMap | None = None

    def __post_init__(self) -> None:
        for split in ("train", "valid", "test"):
            mat = getattr(self, split)
            if mat.shape != (self.n_users, self.n_items):
                raise ValueError(f"{split} has shape {mat.shape}, expected "
                                 f"({self.n_users}, {self.n_items})")
        for name, feat in self.modalities.items():
            if feat.ndim != 2 or feat.shape[0] != self.n_items:
                raise ValueError(f"modality {name!r} has shape {feat.shape}, expected "
                                 f"({self.n_items}, d)")
        for what, idmap, n in (("user_map", self.user_map, self.n_users),
                               ("item_map", self.item_map, self.n_items)):
            if idmap is not None and len(idmap) != n:
                raise ValueError(f"{what} has {len(idmap)} ids, expected {n}")

    @property
    def modality_names(self) -> list[str]:
        return list(self.modalities)

    def train_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) of every training interaction, in CSR order."""
        coo = self.train.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64)

    def cold_users(self) -> np.ndarray:
        """Users with valid or test interactions but none in training."""
        has_train = np.diff(self.train.indptr) > 0
        held = (np.diff(self.valid.indptr) > 0) | (np.diff(self.test.indptr) > 0)
        return np.flatnonzero(held & ~has_train)

    def cold_items(self) -> np.ndarray:
        """Items with valid or test interactions but none in training (the cold-start
        protocol's held-out items, or any item only seen after training)."""
        in_train = np.diff(self.train.tocsc().indptr) > 0
        held = (np.diff(self.valid.tocsc().indptr) > 0) | (np.diff(self.test.tocsc().indptr) > 0)
        return np.flatnonzero(held & ~in_train)

    def without_users_in_eval(self, users: np.ndarray) -> Dataset:
        """Copy with the given users' valid/test interactions removed (left out of evaluation)."""
        keep = np.ones(self.n_users, dtype=np.float32)
        keep[users] = 0.0
        scale = sp.diags(keep)
        valid = (scale @ self.valid).tocsr()
        test = (scale @ self.test).tocsr()
        valid.eliminate_zeros()
        test.eliminate_zeros()
        return replace(self, valid=valid, test=test)

    def with_modalities(self, names: list[str]) -> Dataset:
        return replace(self, modalities={n: self.modalities[n] for n in names})

    def stats(self) -> dict[str, Any]:
        n_train, n_valid, n_test = self.train.nnz, self.valid.nnz, self.test.nnz
        total = n_train + n_valid + n_test
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": total,
            "train": n_train,
            "valid": n_valid,
            "test": n_test,
            "density": total / float(self.n_users * self.n_items),
            "valid_users": int((np.diff(self.valid.indptr) > 0).sum()),
            "test_users": int((np.diff(self.test.indptr) > 0).sum()),
            "cold_users": len(self.cold_users()),
            "items_without_train": int((np.diff(self.train.tocsc().indptr) == 0).sum()),
            "cold_items": len(self.cold_items()),
            "modalities": {n: int(f.shape[1]) for n, f in self.modalities.items()},
            # all-zero rows: items without that modality (no cosine kNN neighbours there)
            "items_without_features": {n: int((~f.any(axis=1)).sum())
                                       for n, f in self.modalities.items()},
        }
