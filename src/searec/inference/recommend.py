"""Top-k recommendations from a trained run, in the dataset's original ids.

The Python side of ``searec recommend``::

    from searec import recommend, write_recommendations
    frame = recommend("runs/shop", k=10)                  # every user, a DataFrame
    frame = recommend("runs/shop", users=["A0003Z"], k=5)  # original user ids
    write_recommendations(frame, "top10.parquet")          # .csv, .tsv or .parquet
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searec.data.dataset import Dataset
from searec.data.idmap import IdMap
from searec.errors import DataError, SearecError
from searec.inference.items import load_catalogue
from searec.io import atomic_path
from searec.models.base import Recommender
from searec.schema import short_repr

if TYPE_CHECKING:  # imported where a frame is built: the server never builds one
    import pandas as pd

FORMATS = {".csv": ",", ".tsv": "\t", ".parquet": None}
_USER_HEADERS = ("user", "userID", "user_id")


class UnknownIdError(SearecError):
    """An id that is not in the dataset (carries the offending token)."""

    def __init__(self, token: str, why: str) -> None:
        super().__init__(why)
        self.token, self.why = token, why

    def __reduce__(self) -> tuple[type[UnknownIdError], tuple[str, str]]:
        return type(self), (self.token, self.why)  # picklable (see DataError.__reduce__)


def read_user_ids(path: str | Path, dataset: Dataset, index_ids: bool = False) -> np.ndarray:
    """User indices from a file of ids, one per line: original ids when the dataset has an
    id map (unless ``index_ids``), else indices. A first line naming a column is skipped."""
    path = Path(path)
    try:
        tokens = [t.strip() for t in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read user list ({exc})") from None
    first = 1
    if tokens and tokens[0] in _USER_HEADERS:
        tokens, first = tokens[1:], 2
    lines = [(n + first, t) for n, t in enumerate(tokens) if t]
    if not lines:
        raise DataError(path, "no user ids in the file")
    try:
        return user_indices([t for _, t in lines], dataset, index_ids)
    except UnknownIdError as exc:
        lineno = next(n for n, t in lines if t == exc.token)
        raise DataError(path, exc.why, lineno) from None


def user_indices(users: Sequence[str | int], dataset: Dataset,
                 index_ids: bool = False) -> np.ndarray:
    """Indices of ``users``: original ids when the dataset maps them (unless
    ``index_ids``), else indices 0..n_users-1."""
    return _indices(users, dataset.user_map, dataset.n_users, "user", index_ids)


def item_indices(items: Sequence[str | int], dataset: Dataset,
                 index_ids: bool = False) -> np.ndarray:
    """Indices of ``items``: original ids when the dataset maps them (unless
    ``index_ids``), else indices 0..n_items-1."""
    return _indices(items, dataset.item_map, dataset.n_items, "item", index_ids)


def _indices(ids: Sequence[str | int], idmap: IdMap | None, n: int, what: str,
             index_ids: bool) -> np.ndarray:
    tokens = [str(u) for u in ids]
    if idmap is not None and not index_ids:
        try:
            return idmap.to_index(tokens)
        except KeyError:
            known = set(idmap.originals)
            bad = next(t for t in tokens if t not in known)
            mapping = "u_id_mapping.csv" if what == "user" else "i_id_mapping.csv"
            raise UnknownIdError(bad, f"{what} {short_repr(bad)} is not in the dataset (ids "
                                 f"are the original {what} ids of {mapping}; for indices "
                                 "pass index_ids / --index-ids)") from None
    out = []
    most = len(str(n - 1))
    for tok in tokens:
        # ASCII digits only: str.isdigit() also takes '²' (int() refuses it) and '١'
        # (int() reads it as 1); and no int() of a 5,000-digit string
        if not (tok.isascii() and tok.isdigit() and len(tok.lstrip("0")) <= most) \
                or int(tok) >= n:
            raise UnknownIdError(tok, f"expected a{'n' if what == 'item' else ''} {what} "
                                 f"index in 0..{n - 1}, got {short_repr(tok)}")
        out.append(int(tok))
    return np.asarray(out, dtype=np.int64)


def recommendation_frame(model: Recommender, dataset: Dataset, users: np.ndarray, k: int,
                         include_seen: bool = False, index_ids: bool = False) -> pd.DataFrame:
    """One row per (user, rank): user, rank (1..k), item, score; original ids (columns
    user_id, item_id) where the dataset maps them, else indices (userID, itemID). A user
    with fewer than k items left to recommend gets fewer rows."""
    import pandas as pd

    if k < 1:
        raise SearecError(f"k must be at least 1, got {k}")
    ids, scores = model.recommend(users, k=k, user_items=None if include_seen else dataset.train)
    k = ids.shape[1]
    user_col, item_col = np.repeat(users, k), ids.ravel()
    # each side in original ids where the dataset maps it (items added to a run's
    # catalogue are always mapped: they have only the ids they were added with)
    user_originals = not index_ids and dataset.user_map is not None
    item_originals = not index_ids and dataset.item_map is not None
    if user_originals:
        assert dataset.user_map is not None
        user_col = dataset.user_map.to_original(user_col)
    if item_originals:
        assert dataset.item_map is not None
        item_col = dataset.item_map.to_original(item_col)
    frame = pd.DataFrame({"user_id" if user_originals else "userID": user_col,
                          "rank": np.tile(np.arange(1, k + 1), len(users)),
                          "item_id" if item_originals else "itemID": item_col,
                          "score": scores.ravel()})
    # a user with fewer than k candidates left gets fewer rows: masked items (their
    # training items, scored -inf, ranked last) are not recommendations
    finite = np.isfinite(scores.ravel())
    return frame if finite.all() else frame[finite].reset_index(drop=True)


def recommend(run: str | Path, users: Sequence[str | int] | None = None, k: int = 20,
              include_seen: bool = False, index_ids: bool = False) -> pd.DataFrame:
    """Top-k items for ``users`` (default: every user) from the best model of a finished
    run; the users' training items are excluded unless ``include_seen``."""
    _, dataset, model = load_catalogue(run)
    index = (np.arange(dataset.n_users) if users is None
             else user_indices(users, dataset, index_ids))
    return recommendation_frame(model, dataset, index, k, include_seen, index_ids)


def check_output_format(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix not in FORMATS:
        raise SearecError(f"{path}: unknown output format; use .csv, .tsv or .parquet")
    return path


def write_recommendations(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a recommendation frame atomically as .csv, .tsv or .parquet."""
    path = check_output_format(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, sep=FORMATS[path.suffix], index=False, float_format="%.6g")
    return path
