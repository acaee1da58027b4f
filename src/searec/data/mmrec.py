"""Read and write MMRec-format dataset folders, validating everything.

A folder holds ``<name>.inter`` (tab-separated, header with at least userID, itemID and
x_label; rating and timestamp optional; x_label 0 train, 1 valid, 2 test; ids 0-based and
contiguous) and any number of ``<modality>_feat.npy`` files (float, shape (n_items, d)).
Every problem raises :class:`DataError` naming the file, the line where known, and what was
expected. Optional ``u_id_mapping.csv`` / ``i_id_mapping.csv`` (MMRec's id maps) give the
original ids behind the indices.
"""

from __future__ import annotations

import zipfile
from itertools import compress
from operator import methodcaller
from pathlib import Path

import numpy as np

from searec.data.dataset import Dataset, interaction_matrix
from searec.data.idmap import ITEM_MAP_FILE, USER_MAP_FILE, load_id_maps
from searec.errors import DataError
from searec.io import atomic_path, atomic_write

REQUIRED_COLUMNS = ("userID", "itemID", "x_label")
OPTIONAL_COLUMNS = ("rating", "timestamp")
FEATURE_SUFFIX = "_feat.npy"
EXPECTED_HEADER = "userID<TAB>itemID<TAB>rating<TAB>timestamp<TAB>x_label"


def find_inter_file(folder: Path, name: str | None) -> Path:
    if not folder.exists():
        raise DataError(folder, "dataset folder does not exist")
    if not folder.is_dir():
        raise DataError(folder, "expected a dataset folder holding <name>.inter")
    if name is not None:
        path = folder / f"{name}.inter"
        if not path.is_file():
            raise DataError(path, "interaction file not found (data.name picks <name>.inter)")
        return path
    default = folder / f"{folder.name}.inter"
    if default.is_file():
        return default
    found = sorted(folder.glob("*.inter"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(folder, "no .inter file found; expected <name>.inter (MMRec format)")
    names = ", ".join(p.name for p in found)
    raise DataError(folder, f"several .inter files ({names}); set data.name to pick one")


def _parse_int_column(
    path: Path, values: list[str], column: str, line_no: np.ndarray
) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.int64)
    except (ValueError, OverflowError):
        for i, v in enumerate(values):
            try:
                int(v)
            except ValueError:
                raise DataError(
                    path, f"{column} must be an integer, got {v!r}", int(line_no[i])
                ) from None
        raise
    return arr


def _parse_float_column(
    path: Path, values: list[str], column: str, line_no: np.ndarray
) -> None:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except ValueError:
        for i, v in enumerate(values):
            try:
                float(v)
            except ValueError:
                raise DataError(
                    path, f"{column} must be a number, got {v!r}", int(line_no[i])
                ) from None
        raise
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        raise DataError(path, f"{column} must be finite, got {values[bad[0]]!r}",
                        int(line_no[bad[0]]))


def _check_ids(
    path: Path, ids: np.ndarray, what: str, lines: np.ndarray, catalogue: int | None = None
) -> int:
    """Ids must be >= 0; without a catalogue size they must also cover 0..max without gaps."""
    neg = np.flatnonzero(ids < 0)
    if len(neg):
        i = int(neg[0])
        raise DataError(path, f"{what} must be >= 0, got {ids[i]}", int(lines[i]))
    n = int(ids.max()) + 1
    if catalogue is not None:
        if n > catalogue:
            i = int(np.argmax(ids))
            raise DataError(path, f"{what} {ids[i]} is out of range: the feature files have "
                            f"{catalogue} rows (items 0..{catalogue - 1})", int(lines[i]))
        if n < catalogue:
            raise DataError(path, f"the feature files have {catalogue} rows but the highest "
                            f"{what} is {n - 1}; row i of a feature file must be item i")
        return catalogue
    present = np.zeros(n, dtype=bool)
    present[ids] = True
    missing = np.flatnonzero(~present)
    if len(missing):
        raise DataError(
            path,
            f"{what}s are not contiguous: expected every id in 0..{n - 1}, but "
            f"{len(missing)} are missing (first missing: {missing[0]}); re-index the ids",
        )
    return n


def read_interactions(
    path: Path, n_items: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Parse and validate a .inter file -> (users, items, labels, n_users, n_items).

    ``n_items`` is the catalogue size when feature files give it; items without any
    interaction are then allowed (cold items). Without it, item ids must be contiguous.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text (byte {exc.start}); expected a TSV file") from None
    lines = text.splitlines()
    if not lines or not any(line.strip() for line in lines):
        raise DataError(path, f"file is empty; expected a header line '{EXPECTED_HEADER}'")
    header_line = lines[0]
    header = header_line.split("\t")
    if not any(c in header for c in REQUIRED_COLUMNS):
        for sep, sep_name in ((",", "comma"), (";", "semicolon"), (" ", "space")):
            if any(c in header_line.split(sep) for c in REQUIRED_COLUMNS):
                raise DataError(path, f"wrong separator: columns are {sep_name}-separated, "
                                "expected tab-separated (TSV)", 1)
        raise DataError(path, f"missing header: expected a first line '{EXPECTED_HEADER}', "
                        f"got {header_line[:60]!r}", 1)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataError(path, f"header lacks column(s) {', '.join(missing)}; expected "
                        f"'{EXPECTED_HEADER}'", 1)
    dup = {c for c in header if header.count(c) > 1}
    if dup:
        raise DataError(path, f"header names column(s) {', '.join(sorted(dup))} twice", 1)
    # vectorised over lines (a Python loop per line was most of a run's load time)
    keep = [bool(line.strip()) for line in lines[1:]]
    body = list(compress(lines[1:], keep))
    if not body:
        raise DataError(path, "no interactions after the header line")
    line_no = np.flatnonzero(keep).astype(np.int64) + 2
    n_cols = len(header)
    tabs = np.fromiter(map(methodcaller("count", "\t"), body), dtype=np.int64,
                       count=len(body))
    wrong = np.flatnonzero(tabs != n_cols - 1)
    if len(wrong):
        got = int(tabs[wrong[0]]) + 1
        hint = " (wrong separator? expected tabs)" if got == 1 else ""
        raise DataError(path, f"expected {n_cols} tab-separated fields as in the header, "
                        f"got {got}{hint}", int(line_no[wrong[0]]))
    fields = "\t".join(body).split("\t")  # row-major: field j of row r at r*n_cols + j

    def col(name: str) -> list[str]:
        return [v.strip() for v in fields[header.index(name)::n_cols]]

    users = _parse_int_column(path, col("userID"), "userID", line_no)
    items = _parse_int_column(path, col("itemID"), "itemID", line_no)
    labels = _parse_int_column(path, col("x_label"), "x_label", line_no)
    for opt in OPTIONAL_COLUMNS:
        if opt in header:
            _parse_float_column(path, col(opt), opt, line_no)
    bad = np.flatnonzero((labels < 0) | (labels > 2))
    if len(bad):
        i = int(bad[0])
        raise DataError(path, f"x_label must be 0 (train), 1 (valid) or 2 (test), got "
                        f"{labels[i]}", int(line_no[i]))
    n_users = _check_ids(path, users, "userID", line_no)
    n_items = _check_ids(path, items, "itemID", line_no, n_items)
    key = users * n_items + items
    order = np.argsort(key, kind="stable")
    dup_pos = np.flatnonzero(key[order][1:] == key[order][:-1])
    if len(dup_pos):
        a, b = order[dup_pos[0]], order[dup_pos[0] + 1]
        raise DataError(path, f"duplicate interaction (user {users[a]}, item {items[a]}) also "
                        f"on line {line_no[a]}; each (user, item) pair may occur once",
                        int(line_no[b]))
    for label, split in ((0, "train"), (1, "valid"), (2, "test")):
        if not (labels == label).any():
            raise DataError(path, f"the {split} split is empty: no row has x_label {label}")
    return users, items, labels, n_users, n_items


def discover_modalities(folder: Path) -> list[str]:
    return sorted(p.name[: -len(FEATURE_SUFFIX)] for p in folder.glob(f"*{FEATURE_SUFFIX}"))


def read_features(path: Path, n_items: int | None = None) -> np.ndarray:
    """Load and validate one modality feature file -> float32 (n_items, d)."""
    if not path.is_file():
        raise DataError(path, "feature file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(path, f"not a readable .npy array ({why}); expected a float array "
                        "saved with numpy.save") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        raise DataError(path, "is an .npz archive; expected a single array saved with numpy.save")
    if arr.ndim != 2:
        raise DataError(path, f"expected a 2-D array (n_items, dim), got {arr.ndim}-D shape "
                        f"{arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_):
        raise DataError(path, f"expected a numeric array, got dtype {arr.dtype}")
    if n_items is not None and arr.shape[0] != n_items:
        raise DataError(path, f"has {arr.shape[0]} rows but the dataset has {n_items} items; "
                        "row i must be the feature of item i")
    if arr.shape[1] == 0:
        raise DataError(path, "has 0 columns; expected at least one feature dimension")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise DataError(path, f"{len(bad_rows)} rows hold NaN or inf (first: row {bad_rows[0]})"
                        "; features must be finite")
    return arr


def load_mmrec(
    folder: str | Path,
    name: str | None = None,
    modalities: list[str] | None = None,
) -> Dataset:
    """Load and validate an MMRec folder into a :class:`Dataset`."""
    folder = Path(folder)
    inter = find_inter_file(folder, name)
    available = discover_modalities(folder)
    if modalities is None:
        modalities = available
    else:
        for m in modalities:
            if m not in available:
                raise DataError(folder / f"{m}{FEATURE_SUFFIX}", "feature file for modality "
                                f"{m!r} not found (found: {', '.join(available) or 'none'})")
    feats: dict[str, np.ndarray] = {}
    for m in modalities:
        path = folder / f"{m}{FEATURE_SUFFIX}"
        feat = read_features(path)
        if feats:
            first = next(iter(feats))
            if feat.shape[0] != feats[first].shape[0]:
                raise DataError(path, f"has {feat.shape[0]} rows but {first}{FEATURE_SUFFIX} "
                                f"has {feats[first].shape[0]}; every modality needs one row "
                                "per item")
        feats[m] = feat
    catalogue = next(iter(feats.values())).shape[0] if feats else None
    users, items, labels, n_users, n_items = read_interactions(inter, catalogue)
    splits = [interaction_matrix(users[labels == k], items[labels == k], n_users, n_items)
              for k in (0, 1, 2)]
    user_map, item_map = load_id_maps(folder, n_users, n_items)
    return Dataset(
        name=inter.stem, n_users=n_users, n_items=n_items,
        train=splits[0], valid=splits[1], test=splits[2],
        modalities=feats, source=str(folder), user_map=user_map, item_map=item_map,
    )


def save_mmrec(dataset: Dataset, folder: str | Path, name: str | None = None) -> Path:
    """Write a dataset as an MMRec folder (atomically, file by file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = name or dataset.name
    parts = []
    for label, mat in enumerate((dataset.train, dataset.valid, dataset.test)):
        coo = mat.tocoo()
        parts.append(np.stack([coo.row, coo.col, np.full(coo.nnz, label)], axis=1))
    table = np.concatenate(parts).astype(np.int64)

    def write(fh):  # type: ignore[no-untyped-def]
        fh.write("userID\titemID\trating\ttimestamp\tx_label\n")
        for u, i, x in table:
            fh.write(f"{u}\t{i}\t1\t0\t{x}\n")

    atomic_write(folder / f"{name}.inter", write)
    for m, feat in dataset.modalities.items():
        with atomic_path(folder / f"{m}{FEATURE_SUFFIX}") as tmp, open(tmp, "wb") as fh:
            np.save(fh, feat.astype(np.float32))
    if dataset.user_map is not None:
        dataset.user_map.save(folder / USER_MAP_FILE, "userID")
    if dataset.item_map is not None:
        dataset.item_map.save(folder / ITEM_MAP_FILE, "itemID")
    return folder


def write_features(path: str | Path, features: np.ndarray) -> Path:
    """Write one modality's item features (row i = item i) as .npy, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(features, dtype=np.float32))
    return path


def load_with_item_map(folder: str | Path) -> Dataset:
    """A prepared folder's dataset, which must carry original item ids (for aligning
    features to it)."""
    from searec.data.idmap import ITEM_MAP_FILE

    folder = Path(folder)
    dataset = load_mmrec(folder)
    if dataset.item_map is None:
        raise DataError(folder / ITEM_MAP_FILE, "not found; the dataset has no original item "
                        "ids to align to (prepare it with `searec prepare`)")
    return dataset
