"""Atomic file output: write to a temporary file in the same folder, then rename.

A crash or kill never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from searec.errors import SearecError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def check_output_dir(out: str | Path, overwrite: bool = False, what: str = "folder",
                     hint: str = "pass --overwrite to replace it",
                     error: type[Exception] = SearecError) -> Path:
    """Refuse an output folder that cannot be used, without touching anything: a file in
    its place, a non-empty folder (unless ``overwrite``), an unwritable parent."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise error(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise error(f"{out}: {what} exists and is not empty; {hint}")
    parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise error(f"{out}: cannot create the {what} ({parent} is a file)")
    if not os.access(parent, os.W_OK):
        raise error(f"{out}: cannot create the {what} ({parent} is not writable)")
    return out


def atomic_write(path: str | Path, write: Callable[[IO[Any]], None], mode: str = "w") -> None:
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        write(fh)


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text))


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of dict rows; the columns are the union of keys, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_csv_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts keyed by its header (what ``rows_to_csv`` wrote)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
