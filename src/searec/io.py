"""Atomic file output (write to a temporary file in the same folder, then rename) and
advisory file locks.

A crash or kill never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Collection, Iterator
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


@contextlib.contextmanager
def file_lock(path: str | Path, note: str = "") -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block; yields False,
    without waiting, when another process holds it. ``note`` (who holds it) is written
    into the file for the message a waiting process shows. The operating system releases
    the lock when its holder exits, crashed or not, so a lock never goes stale. Without
    POSIX file locks (Windows) every lock succeeds."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield True
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        if note:
            os.ftruncate(fd, 0)
            os.pwrite(fd, note.encode("utf-8", "replace"), 0)
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def read_bounded_text(path: str | Path, limit: int, what: str,
                      error: type[Exception] = SearecError) -> str:
    """The UTF-8 text of ``path``, refused (``error`` naming the file) when it is larger
    than ``limit`` bytes or not UTF-8: a file from elsewhere cannot exhaust memory."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(data) > limit:
        raise error(f"{path}: the {what} is larger than {limit:,} bytes; refused")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: the {what} is not UTF-8 text (byte {exc.start})") from None


def check_output_dir(out: str | Path, overwrite: bool = False, what: str = "folder",
                     hint: str = "pass --overwrite to replace it",
                     error: type[Exception] = SearecError, ignore: Collection[str] = ()
                     ) -> Path:
    """Refuse an output folder that cannot be used, without touching anything: a file in
    its place, a non-empty folder (unless ``overwrite``; entries named in ``ignore`` do
    not count), an unwritable parent."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise error(f"{out}: exists and is not a directory")
    if out.exists() and any(c.name not in ignore for c in out.iterdir()) and not overwrite:
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
