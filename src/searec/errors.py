"""Errors that searec reports to users as one clear line (no traceback unless --debug)."""

from __future__ import annotations

from pathlib import Path


class SearecError(Exception):
    """Base class of every error that is the user's input, not a bug in searec."""


class DataError(SearecError):
    """A dataset file is malformed. Names the file and, where known, the line."""

    def __init__(self, path: str | Path, why: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.why = why
        where = f"{self.path}" if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {why}")

    def __reduce__(self) -> tuple[type[DataError], tuple[Path, str, int | None]]:
        # unpickled (a worker process's error reaching its parent) from the constructor's
        # arguments, not from the message: Exception's default passes args to __init__
        return type(self), (self.path, self.why, self.line)


class ConfigError(SearecError):
    """A configuration key or value is wrong. Names the key and what was expected."""


class RunDirError(SearecError):
    """The run directory cannot be used (exists, unwritable, missing checkpoint)."""


class NonFiniteLossError(SearecError):
    """A loss term became NaN or inf during training."""


class NonFiniteScoreError(SearecError):
    """A model produced NaN scores."""
