"""Two processes under torchrun (gloo) give the single-process result for the same global
batch, within floating-point tolerance."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from searec.io import read_csv_rows

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

ARGS = ["--model", "sea", "--epochs", "3", "data.synthetic.n_users=300",
        "data.synthetic.n_items=200", "train.progress=false", "train.batch_size=512",
        "train.threads=1", "model.separation.distancing=club",
        "model.separation.distancing.q_steps=3", "model.separation.mi_items=all",
        # the tolerance below is float32's: bf16 (train.precision=auto on a CPU with
        # bf16 arithmetic) rounds the two summation orders apart by more
        "train.precision=float32"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def history(run: Path) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items() if v != ""}
            for row in read_csv_rows(run / "history.csv")]


def test_two_processes_match_one(tmp_path: Path) -> None:
    single, multi = tmp_path / "single", tmp_path / "ddp"
    run = subprocess.run([sys.executable, "-m", "searec", "train", "--out", str(single),
                          *ARGS], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                          "2", "--master_port", str(free_port()), "-m", "searec", "train",
                          "--out", str(multi), *ARGS],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("best epoch") == 1  # rank 0 alone reports
    one, two = history(single), history(multi)
    assert len(one) == len(two) == 3
    for a, b in zip(one, two, strict=True):
        assert set(a) == set(b)
        for key in a:
            if key.startswith("loss") or key.startswith("valid_"):
                # stated tolerance: 1e-4 relative (summation order of averaged gradients)
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    m1 = json.loads((single / "metrics.json").read_text())
    m2 = json.loads((multi / "metrics.json").read_text())
    assert m2["world_size"] == 2 and m1["best_epoch"] == m2["best_epoch"]
    for split in ("valid", "test"):
        for name, value in m1[split].items():
            assert m2[split][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_torchrun_needs_an_explicit_run_folder(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                          "2", "--master_port", str(free_port()), "-m", "searec", "train",
                          "--epochs", "1", "train.progress=false"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode != 0
    assert "under torchrun, pass --out" in run.stderr
