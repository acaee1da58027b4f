"""Read user-supplied tables (CSV, TSV, Parquet, JSON lines) with errors that name the file,
the column and the row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from searec.errors import DataError
from searec.schema import Registry

SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t"}


def one_line(text: str) -> str:
    """Collapse whitespace (tabs and line breaks included) to single spaces."""
    return " ".join(text.split())


TableReader = Callable[[Path, str | None], pd.DataFrame]
FORMATS: Registry[TableReader] = Registry("table format")


def register_table_format(*suffixes: str) -> Callable[[TableReader], TableReader]:
    """Decorator: read files ending in ``suffixes`` (e.g. ".dat") with this function.

    A reader takes (path, separator or None) and returns every column as text (ids stay
    exactly as written) with empty cells as NaN; :func:`read_table` turns its parsing
    errors into a :class:`DataError` that names the file."""

    def add(reader: TableReader) -> TableReader:
        for suffix in suffixes:
            if not suffix.startswith(".") or suffix.lower() in FORMATS:
                raise ValueError(f"table format {suffix!r}: expected a new '.suffix'")
            FORMATS.add(suffix.lower(), reader)
        return reader

    return add


def table_formats() -> list[str]:
    return FORMATS.names()


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(str).where(frame.notna())


@register_table_format(".parquet")
def _read_parquet(path: Path, sep: str | None) -> pd.DataFrame:
    return _as_text(pd.read_parquet(path))


@register_table_format(".jsonl", ".json")
def _read_json_lines(path: Path, sep: str | None) -> pd.DataFrame:
    return _as_text(pd.read_json(path, lines=True, dtype=False))


def read_delimited(path: Path, sep: str | None) -> pd.DataFrame:
    """A delimited text table with a header; ``sep`` None: from the file extension."""
    if sep is None:
        sep = SEPARATORS[_suffix(path)]
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                       skipinitialspace=True)


register_table_format(*SEPARATORS)(read_delimited)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return Path(path.stem).suffix.lower() if suffix == ".gz" else suffix


def read_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Every column as text (ids stay exactly as written), empty cells as NaN. The format
    comes from the extension (``.gz`` looks through); an unknown one is read as delimited
    text when ``sep`` is given."""
    if not path.is_file():
        raise DataError(path, "file not found")
    suffix = _suffix(path)
    reader = FORMATS.entries.get(suffix)
    if reader is None:
        if sep is None:
            raise DataError(path, f"unknown table format {suffix!r}; use one of "
                            f"{', '.join(table_formats())}, or pass --sep")
        reader = read_delimited
    try:
        return reader(path, sep)
    except DataError:
        raise
    except ImportError as exc:
        raise DataError(path, f"reading {suffix} needs an extra package ({exc})") from None
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, f"cannot read table ({str(exc).splitlines()[0]})") from None


def require_columns(path: Path, frame: pd.DataFrame, columns: dict[str, str | None]) -> None:
    """``columns`` maps an option name (e.g. --user-col) to the column it names."""
    for option, column in columns.items():
        if column is not None and column not in frame.columns:
            raise DataError(path, f"no column {column!r} ({option}); the header has "
                            f"{', '.join(map(str, frame.columns))}", 1)


def numeric_column(path: Path, frame: pd.DataFrame, column: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"column {column!r} must be numeric, got "
                        f"{frame[column].iloc[row]!r}", row + 2)
    return values


def integer_column(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    """Non-negative integers of a text column; the first other value is an error naming
    its line (header = line 1)."""
    values = frame[column].astype(str).str.strip()
    bad = ~values.str.fullmatch(r"\d+")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"{column} must be an integer, got {values.iloc[row]!r}",
                        row + 2)
    return values.astype(np.int64).to_numpy()


def time_column(path: Path, frame: pd.DataFrame, column: str) -> pd.Series:
    """Seconds since the epoch from numbers or date/time text (ISO 8601 and the like)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.notna().all():
        return values.astype("int64")
    parsed = pd.to_datetime(frame[column], errors="coerce", utc=True, format="mixed")
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"column {column!r} must be a number or a date/time, got "
                        f"{frame[column].iloc[row]!r}", row + 2)
    return (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def read_interactions_table(
    path: Path,
    user_col: str,
    item_col: str,
    rating_col: str | None = None,
    time_col: str | None = None,
    sep: str | None = None,
) -> pd.DataFrame:
    """-> DataFrame(user, item[, rating][, timestamp])."""
    frame = read_table(path, sep)
    require_columns(path, frame, {"--user-col": user_col, "--item-col": item_col,
                                  "--rating-col": rating_col, "--time-col": time_col})
    if frame.empty:
        raise DataError(path, "no interactions: the table has a header but no rows")
    out = pd.DataFrame({"user": frame[user_col], "item": frame[item_col]})
    if rating_col:
        out["rating"] = numeric_column(path, frame, rating_col)
    if time_col:
        out["timestamp"] = time_column(path, frame, time_col)
    return out


def read_item_texts(
    path: Path, item_col: str, text_cols: list[str], sep: str | None = None
) -> dict[str, str]:
    """original item id -> its text columns joined with spaces (empty cells skipped)."""
    frame = read_table(path, sep)
    require_columns(path, frame, {"--item-id-col": item_col,
                                  **{f"--text-cols {c}": c for c in text_cols}})
    ids = frame[item_col].astype(str).str.strip()
    dup = ids.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(path, f"item {ids.iloc[row]!r} appears twice", row + 2)
    text = frame[text_cols].fillna("").astype(str).agg(" ".join, axis=1).map(one_line)
    return dict(zip(ids, text, strict=True))
