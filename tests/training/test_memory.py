"""train.cpu_memory=reuse: large blocks stop coming from (and going back to) mmap."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from searec.config import Config, build_config
from searec.errors import ConfigError

# Runs in a fresh interpreter: the setting is process-wide and would leak into the suite.
PROBE = """
import ctypes, sys, torch
from searec.training.memory import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd usmblks "
                                               "fsmblks uordblks fordblks keepcost").split()]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "reuse":
    assert keep_freed_memory()
before = libc.mallinfo2().hblkhd
x = torch.ones(64 * 2**20 // 4)  # 64 MiB, above glibc's largest mmap threshold
print(libc.mallinfo2().hblkhd - before)
"""


def _glibc_with_mallinfo2() -> bool:
    libc = ctypes.CDLL(None)
    return sys.platform.startswith("linux") and hasattr(libc, "mallinfo2")


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="needs glibc >= 2.33 (mallinfo2)")
@pytest.mark.parametrize(("mode", "mapped"), [("release", True), ("reuse", False)])
def test_large_tensors_come_from_the_heap_only_when_reusing(mode: str, mapped: bool) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True)
    grew = int(out.stdout.strip().splitlines()[-1])
    assert (grew >= 64 * 2**20) is mapped


def test_cpu_memory_is_checked() -> None:
    assert build_config({"train": {"cpu_memory": "release"}}).train.cpu_memory == "release"
    with pytest.raises(ConfigError, match="cpu_memory"):
        build_config({"train": {"cpu_memory": "keep"}})


def _tiny_cpu_run(cpu_memory: str) -> Config:
    return build_config({
        "data": {"synthetic": {"n_users": 40, "n_items": 30}},
        "model": {"name": "bpr"},
        "train": {"epochs": 1, "device": "cpu", "progress": False, "cpu_memory": cpu_memory},
    })


@pytest.mark.parametrize(("mode", "applied"), [("reuse", True), ("release", False)])
def test_cpu_training_applies_the_setting(monkeypatch, tmp_path, mode: str,
                                          applied: bool) -> None:
    from searec import runs as run

    calls: list[bool] = []
    monkeypatch.setattr(run, "keep_freed_memory", lambda: calls.append(True) or True)
    run.train(_tiny_cpu_run(mode), tmp_path / "run", log=lambda _m: None)
    assert calls == ([True] if applied else [])


def test_reuse_says_when_it_cannot_take_effect(monkeypatch, tmp_path) -> None:
    from searec import runs as run

    monkeypatch.setattr(run, "keep_freed_memory", lambda: False)
    lines: list[str] = []
    run.train(_tiny_cpu_run("reuse"), tmp_path / "run", log=lines.append)
    assert any("cpu_memory=reuse has no effect" in line for line in lines)
