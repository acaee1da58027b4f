"""User-supplied item vectors (image, audio, ...) keyed by original item id -> a feature
matrix whose row i is item i of a prepared dataset.

Accepted inputs: a ``.npy`` matrix with a separate id list (one original id per line, row
order), a table (.csv/.tsv/.parquet: one id column, every other column numeric), or the
Amazon image-feature binary (``image_features_<Category>.b``: a 10-byte ASIN then ``dim``
float32 values per record).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from searec.data.idmap import IdMap
from searec.data.mmrec import FEATURE_SUFFIX, load_with_item_map, write_features
from searec.data.tables import numeric_column, read_table
from searec.errors import DataError
from searec.io import write_text

MissingPolicy = Literal["error", "mean", "zero"]


def _read_id_list(path: Path) -> np.ndarray:
    try:
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read id list ({exc})") from None
    while ids and not ids[-1]:
        ids.pop()
    empty = [i for i, v in enumerate(ids) if not v]
    if empty:
        raise DataError(path, "empty line; expected one item id per line", empty[0] + 1)
    return np.asarray(ids, dtype=object)


def read_vectors(
    path: Path,
    ids: Path | None = None,
    id_col: str | None = None,
    dim: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """-> (original ids (n,), float32 vectors (n, d))."""
    if not path.is_file():
        raise DataError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if ids is None:
            raise DataError(path, "a .npy matrix has no item ids; pass --ids FILE with one "
                            "original item id per line, in row order")
        try:
            vecs = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(path, f"not a readable .npy array ({exc})") from None
        if vecs.ndim != 2:
            raise DataError(path, f"expected a 2-D array (items, dim), got shape {vecs.shape}")
        names = _read_id_list(ids)
        if len(names) != len(vecs):
            raise DataError(ids, f"has {len(names)} ids but {path.name} has {len(vecs)} rows")
    elif suffix == ".b":
        record = np.dtype([("asin", "S10"), ("vec", "<f4", (dim,))])
        size = path.stat().st_size
        if size % record.itemsize:
            raise DataError(path, f"size {size} is not a multiple of {record.itemsize} bytes "
                            f"(10-byte ASIN + {dim} float32); is --dim right?")
        raw = np.fromfile(path, dtype=record)
        names = np.char.decode(raw["asin"], "ascii").astype(object)
        vecs = raw["vec"]
    else:
        frame = read_table(path)
        id_col = id_col or str(frame.columns[0])
        if id_col not in frame.columns:
            raise DataError(path, f"no column {id_col!r} (--id-col)", 1)
        names = frame[id_col].astype(str).str.strip().to_numpy(dtype=object)
        values = frame.drop(columns=[id_col])
        if values.shape[1] == 0:
            raise DataError(path, "no vector columns besides the id column")
        try:
            vecs = values.to_numpy(dtype=np.float64)
        except ValueError:
            for col in values.columns:  # name the first cell that is not a number
                numeric_column(path, values, col)
            raise
    vecs = np.asarray(vecs, dtype=np.float32)
    bad_rows = np.flatnonzero(~np.isfinite(vecs).all(axis=1))
    if len(bad_rows):
        raise DataError(path, f"{len(bad_rows)} vectors hold NaN, inf or empty cells "
                        f"(first: item {names[bad_rows[0]]!r})")
    return names, vecs


def align_vectors(
    names: np.ndarray,
    vecs: np.ndarray,
    item_map: IdMap,
    missing: MissingPolicy = "error",
    source: str | Path = "vectors",
) -> tuple[np.ndarray, np.ndarray, int]:
    """-> (features (n_items, d), indices of imputed items, number of unused vectors)."""
    index = pd.Index(names)
    if not index.is_unique:
        raise DataError(source, f"item {index[index.duplicated()][0]!r} has two vectors")
    pos = index.get_indexer(pd.Index(item_map.originals))
    absent = np.flatnonzero(pos < 0)
    unused = len(names) - (len(item_map) - len(absent))
    if len(absent) and missing == "error":
        shown = ", ".join(repr(x) for x in item_map.originals[absent[:5]])
        raise DataError(source, f"{len(absent)} of {len(item_map)} dataset items have no "
                        f"vector (e.g. {shown}); supply them, or pass --missing mean|zero "
                        "to impute")
    if len(absent) == len(item_map):
        raise DataError(source, "no dataset item has a vector; do the ids match the "
                        f"dataset's {item_map.column} column?")
    out = np.empty((len(item_map), vecs.shape[1]), dtype=np.float32)
    present = pos >= 0
    out[present] = vecs[pos[present]]
    if len(absent):
        out[absent] = out[present].mean(axis=0) if missing == "mean" else 0.0
    return out, absent, unused


@dataclass
class AlignedFeatures:
    """What :func:`align_to_dataset` wrote."""

    path: Path  # DIR/<modality>_feat.npy
    shape: tuple[int, int]
    unused: int  # vectors of items not in the dataset
    imputed: list[str]  # original ids of dataset items without a vector
    listing: Path | None  # DIR/<modality>_missing_items.txt, when any were imputed


def align_to_dataset(
    vectors: str | Path, dataset: str | Path, modality: str, ids: str | Path | None = None,
    id_col: str | None = None, dim: int = 4096, missing: MissingPolicy = "error",
) -> AlignedFeatures:
    """Vectors keyed by original item id -> DATASET/<modality>_feat.npy (row i = item i),
    imputing (``missing`` mean|zero) and listing the items without a vector."""
    folder = Path(dataset)
    ds = load_with_item_map(folder)
    assert ds.item_map is not None
    names, vecs = read_vectors(Path(vectors), None if ids is None else Path(ids), id_col, dim)
    feats, imputed, unused = align_vectors(names, vecs, ds.item_map, missing, vectors)
    out = write_features(folder / f"{modality}{FEATURE_SUFFIX}", feats)
    listing = None
    originals = [str(x) for x in ds.item_map.originals[imputed]]
    if originals:
        listing = folder / f"{modality}_missing_items.txt"
        write_text(listing, "\n".join(originals) + "\n")
    return AlignedFeatures(out, (int(feats.shape[0]), int(feats.shape[1])), unused,
                           originals, listing)
