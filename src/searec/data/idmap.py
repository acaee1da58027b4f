"""Original user/item ids <-> contiguous indices, stored as MMRec's mapping files.

MMRec's preprocessing writes ``u_id_mapping.csv`` and ``i_id_mapping.csv`` (tab-separated,
header ``<original column>\\t userID`` / ``<original column>\\t itemID``, e.g. ``asin``). We
read and write the same files, so folders prepared by either tool give recommendations in
original ids.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searec.errors import DataError
from searec.io import atomic_path

USER_MAP_FILE = "u_id_mapping.csv"
ITEM_MAP_FILE = "i_id_mapping.csv"


@dataclass(frozen=True)
class IdMap:
    """Index i <-> original id ``originals[i]`` (original ids kept as strings)."""

    originals: np.ndarray  # object array of str, position = index
    column: str = "id"  # name of the original-id column in the mapping file

    def __post_init__(self) -> None:
        import pandas as pd  # here, not at import: loading a folder without maps needs none

        index = pd.Index(self.originals)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise ValueError(f"original id {dup!r} maps to two indices")
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.originals)

    def to_index(self, originals: np.ndarray | list[str], what: str = "id") -> np.ndarray:
        """Indices of the given original ids; unknown ids raise KeyError naming them."""
        import pandas as pd

        pos = self._index.get_indexer(pd.Index(np.asarray(originals, dtype=object).astype(str)))
        if (pos < 0).any():
            unknown = np.asarray(originals, dtype=object)[pos < 0]
            raise KeyError(f"{len(unknown)} unknown {what}(s), e.g. {unknown[0]!r}")
        return pos.astype(np.int64)

    def to_original(self, indices: np.ndarray) -> np.ndarray:
        return self.originals[np.asarray(indices, dtype=np.int64)]

    def save(self, path: Path, index_column: str) -> None:
        import pandas as pd

        frame = pd.DataFrame({self.column: self.originals,
                              index_column: np.arange(len(self.originals))})
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, sep="\t", index=False, quoting=csv.QUOTE_NONE)


def read_id_map(path: Path, index_column: str, n: int) -> IdMap:
    """Read one mapping file and check it covers indices 0..n-1 exactly once."""
    import pandas as pd

    from searec.data.tables import integer_column

    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False,
                            quoting=csv.QUOTE_NONE)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(path, f"cannot read id mapping ({str(exc).splitlines()[0]})") from None
    if index_column not in frame.columns or len(frame.columns) != 2:
        raise DataError(path, f"expected two tab-separated columns, an original id and "
                        f"{index_column}; got {list(frame.columns)}", 1)
    original_column = next(c for c in frame.columns if c != index_column)
    index = integer_column(path, frame, index_column)
    if len(index) != n or not np.array_equal(np.sort(index), np.arange(n)):
        raise DataError(path, f"must map every {index_column} 0..{n - 1} exactly once "
                        f"(the dataset has {n}); got {len(index)} rows")
    originals = np.empty(n, dtype=object)
    originals[index] = frame[original_column].to_numpy()
    dup = pd.Index(originals).duplicated()
    if dup.any():
        raise DataError(path, f"original id {originals[dup][0]!r} is mapped twice")
    return IdMap(originals, original_column)


def load_id_maps(folder: Path, n_users: int, n_items: int) -> tuple[IdMap | None, IdMap | None]:
    """The folder's user and item maps, each None when its file is absent."""
    users = folder / USER_MAP_FILE
    items = folder / ITEM_MAP_FILE
    return (read_id_map(users, "userID", n_users) if users.is_file() else None,
            read_id_map(items, "itemID", n_items) if items.is_file() else None)
