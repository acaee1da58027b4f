"""Huge pages for torch's large CPU tensors: asked for on import, and really given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from searec.hugepages import ENV_VAR, request_huge_pages


def _thp_mode() -> str:
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return ""


def test_request_keeps_what_the_environment_already_says(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv(ENV_VAR, "0")
    request_huge_pages()
    assert os.environ[ENV_VAR] == "0"
    monkeypatch.delenv(ENV_VAR)
    request_huge_pages()
    assert os.environ[ENV_VAR] == "1"


def test_request_leaves_other_systems_alone(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv(ENV_VAR, raising=False)
    request_huge_pages()
    assert ENV_VAR not in os.environ


def _active_in_fresh_interpreter(value: str | None) -> bool:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if value is not None:
        env[ENV_VAR] = value
    code = ("import searec, torch\n"
            "from searec.hugepages import huge_pages_active\n"
            "print(huge_pages_active())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[-1] == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux") or "[never]" in _thp_mode()
                    or not _thp_mode(), reason="needs Linux with transparent huge pages")
def test_importing_searec_gives_torch_tensors_huge_pages_unless_turned_off():
    # the kernel's own word (THPeligible) on a fresh tensor's mapping, not the variable
    assert _active_in_fresh_interpreter(None)
    if "[madvise]" in _thp_mode():  # with [always] every large mapping is eligible anyway
        assert not _active_in_fresh_interpreter("0")
