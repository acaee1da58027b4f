"""Readers for the public Amazon review dumps (McAuley et al., 2014 and 2018 releases).

Reviews: one JSON object per line with ``reviewerID``, ``asin`` and optionally ``overall``
(rating) and ``unixReviewTime``; both releases use these names. The 2014 ratings-only
files (``ratings_<Category>.csv``: user,item,rating,timestamp without a header, what MMRec
starts from) are read too. Metadata: one object per line with ``asin``, ``title``, ``brand``,
categories and description. The 2014 release writes Python dict literals (single quotes) with
``categories`` as a list of lists and ``description`` as a string; 2018 writes JSON with
``category`` and ``description`` as lists of strings. Files may be gzipped.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from searec.data.tables import one_line
from searec.errors import DataError


def _open_text(path: Path) -> IO[str]:
    if not path.is_file():
        raise DataError(path, "file not found")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-empty line: JSON, or a Python dict literal."""
    with _open_text(path) as fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    try:
                        record = ast.literal_eval(line)
                    except (ValueError, SyntaxError, MemoryError, RecursionError):
                        raise DataError(path, "not a JSON object or Python dict literal: "
                                        f"{line[:60]!r}", lineno) from None
                if not isinstance(record, dict):
                    raise DataError(path, f"expected one object per line, got "
                                    f"{type(record).__name__}", lineno)
                yield lineno, record
        except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, OSError) as exc:
            raise DataError(path, f"cannot read ({exc}); expected UTF-8 JSON lines, "
                            "optionally gzipped") from None


def read_amazon_reviews(path: Path) -> pd.DataFrame:
    """-> DataFrame(user, item, rating, timestamp) from a reviews or ratings file."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        return _read_ratings_csv(path)
    users, items, ratings, times = [], [], [], []
    for lineno, rec in iter_records(path):
        try:
            users.append(str(rec["reviewerID"]))
            items.append(str(rec["asin"]))
        except KeyError as exc:
            raise DataError(path, f"review lacks the field {exc.args[0]!r} (expected "
                            "reviewerID and asin)", lineno) from None
        ratings.append(rec.get("overall", 1.0))
        times.append(rec.get("unixReviewTime", 0))
    if not users:
        raise DataError(path, "no reviews in the file")
    try:
        return pd.DataFrame({"user": users, "item": items,
                             "rating": pd.to_numeric(pd.Series(ratings)),
                             "timestamp": pd.to_numeric(pd.Series(times)).astype("int64")})
    except (ValueError, TypeError) as exc:
        raise DataError(path, f"overall and unixReviewTime must be numbers ({exc})") from None


def _read_ratings_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, header=None, dtype={0: str, 1: str})
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, f"cannot read ratings CSV ({str(exc).splitlines()[0]})") from None
    if frame.shape[1] != 4:
        raise DataError(path, f"expected 4 columns user,item,rating,timestamp (no header), "
                        f"got {frame.shape[1]}", 1)
    frame.columns = ["user", "item", "rating", "timestamp"]
    for col in ("rating", "timestamp"):
        values = pd.to_numeric(frame[col], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            raise DataError(path, f"{col} must be a number, got {frame[col][row]!r}", row + 1)
        frame[col] = values
    frame["timestamp"] = frame["timestamp"].astype("int64")
    return frame


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(_as_text(v) for v in value)
    return str(value)


def item_text(record: dict[str, Any]) -> str:
    """MMRec's sentence: title, brand, categories (2014: the first path), description."""
    categories = record.get("categories")
    if isinstance(categories, list) and categories and isinstance(categories[0], list):
        categories = categories[0]
    if categories is None:
        categories = record.get("category")
    parts = [record.get("title"), record.get("brand"), categories, record.get("description")]
    return one_line(" ".join(_as_text(p) for p in parts))


def read_amazon_meta(path: Path, items: set[str] | None = None) -> dict[str, str]:
    """asin -> item text, for the given items (all when None)."""
    texts: dict[str, str] = {}
    for lineno, rec in iter_records(path):
        if "asin" not in rec:
            raise DataError(path, "metadata record lacks the field 'asin'", lineno)
        asin = str(rec["asin"])
        if items is None or asin in items:
            texts[asin] = item_text(rec)
    return texts
