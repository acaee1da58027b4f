"""Checkpoints and the run-folder lock: what a run folder may hold and who may write it.

A run folder is data from elsewhere as often as not (shared, downloaded, served), so a
checkpoint is read with ``torch.load(weights_only=True)``: tensors, numbers, strings and
containers of them, never an arbitrary object. A file that needs more is refused with an
error naming it, before anything in it runs; a truncated or corrupt one is an error
naming it too, never a traceback from inside torch.

One process writes a run folder at a time: ``train`` (new, ``--overwrite`` or
``--resume``) and ``items add`` hold :func:`run_lock` while they write; a second writer
gets a :class:`~searec.errors.RunDirError` that names the holder and deletes nothing.
"""

from __future__ import annotations

import os
import pickle
import shutil
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from searec.errors import RunDirError
from searec.io import file_lock

LAST = "last.pt"
BEST = "best.pt"
# The lock file of a run folder (inside it: --overwrite clears everything else).
LOCK = ".searec.lock"
# Version of what best.pt / last.pt hold. 2 (searec 0.2): the optimisers of auxiliary
# objectives beside the main one; 1 (searec 0.1) kept CLUB's q optimiser in the model's state.
CHECKPOINT_FORMAT = 2


def _unsupported(message: str) -> str:
    """The object torch refused, from its message (``GLOBAL posix.system``), if named;
    only name characters (the name comes from the file)."""
    words = message.split()
    if "GLOBAL" not in words[:-1]:
        return ""
    name = words[words.index("GLOBAL") + 1]
    return "".join(c for c in name if c.isascii() and (c.isalnum() or c in "._"))[:120]


def read_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A checkpoint this version wrote, loaded without running anything in it.

    Refused with a :class:`RunDirError` naming ``path``: a file holding anything but
    tensors and plain values (``weights_only``), a truncated or corrupt file, another
    format version, a payload without a model state."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        what = _unsupported(str(exc))
        raise RunDirError(
            f"{path}: refused: the checkpoint holds objects other than tensors and plain "
            f"values{f' ({what})' if what else ''}, which searec never writes; nothing in it "
            "was run. Use checkpoints only from runs you trust, or train the run again"
        ) from None
    except FileNotFoundError:
        raise RunDirError(f"{path}: checkpoint not found") from None
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read the checkpoint ({exc.strerror})") from None
    except Exception as exc:  # torch and pickle raise many kinds for a damaged file
        raise RunDirError(
            f"{path}: not a readable checkpoint (truncated or corrupt: "
            f"{type(exc).__name__}); train the run again or restore the file") from None
    found = ckpt.get("format", 1) if isinstance(ckpt, dict) else None
    if found != CHECKPOINT_FORMAT:
        if found == 1:
            raise RunDirError(f"{path}: checkpoint format 1, written by an earlier searec "
                              f"(0.1); this version reads format {CHECKPOINT_FORMAT} only. "
                              "Train the run again")
        raise RunDirError(f"{path}: not a searec checkpoint of format {CHECKPOINT_FORMAT} "
                          f"(format {str(found)[:40]!r})")
    state = ckpt.get("model")
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise RunDirError(f"{path}: the checkpoint has no model state (a mapping of names "
                          "to tensors)")
    return ckpt


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path
                     ) -> None:
    """``model.load_state_dict(state)``; a state that does not fit the model built from
    the run's config is a :class:`RunDirError` naming ``path`` and the first mismatch."""
    expect = getattr(model, "expect_state", None)
    if expect is not None:  # a Recommender: optional parts the state holds
        expect(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        if wrong:
            k = wrong[0]
            why = (f"{k!r} has shape {tuple(state[k].shape)}, the model built from the "
                   f"run's config.yaml and dataset {tuple(own[k].shape)}")
        elif missing:
            why = f"no tensor {missing[0]!r}"
        else:
            why = f"an unknown tensor {unexpected[0][:80]!r}"
        raise RunDirError(f"{path}: the checkpoint does not fit the model of this run ({why}"
                          "); was the dataset or config.yaml changed since training?")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied
        raise RunDirError(f"{path}: the checkpoint does not fit the model of this run "
                          f"({str(exc).splitlines()[0][:200]})") from None


# ---------------------------------------------------------------- one writer per run folder
def lock_holder(run_dir: str | Path) -> str:
    """Who holds (or last held) ``run_dir``'s lock, as its holder wrote it ('' unknown)."""
    try:
        with open(Path(run_dir) / LOCK, "rb") as fh:
            return fh.read(300).decode("utf-8", "replace").strip()
    except OSError:
        return ""


@contextmanager
def run_lock(run_dir: str | Path, action: str) -> Iterator[Path]:
    """Hold ``run_dir``'s writer lock (creating the folder) for the block, or raise a
    :class:`RunDirError` naming the process that holds it. ``action`` says what this
    process does, for the message another writer gets."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{run_dir}: cannot create the run directory ({exc.strerror})"
                          ) from None
    note = f"pid {os.getpid()} on {socket.gethostname()}: {action}"
    with ExitStack() as stack:
        try:
            held = stack.enter_context(file_lock(run_dir / LOCK, note))
        except OSError as exc:
            raise RunDirError(f"{run_dir}: cannot lock the run directory ({exc.strerror})"
                              ) from None
        if not held:
            holder = lock_holder(run_dir)
            raise RunDirError(
                f"{run_dir}: another searec process is writing this run folder"
                f"{f' ({holder})' if holder else ''}; nothing was changed. Wait until it "
                "finishes, or use another folder")
        yield run_dir


def clear_run_dir(run_dir: Path) -> None:
    """Delete everything in ``run_dir`` but its lock file (which this process holds)."""
    for child in run_dir.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete what a process killed while writing left in ``folder``: ``.*.tmp`` files
    (atomic writes) and ``.v<N>.*`` folders (item-table versions). Only under the run's
    lock: no live writer owns them then."""
    removed = []
    if not folder.is_dir():
        return removed
    for child in folder.iterdir():
        if not child.name.startswith("."):
            continue
        if child.is_file() and child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)
            removed.append(child)
        elif child.is_dir() and child.name.startswith(".v"):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed
