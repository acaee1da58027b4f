"""A small trained run with original ids, and a real `searec serve` on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from searec.cli import main
from tests.conftest import write_raw_shop

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="session")
def shop_run(tmp_path_factory) -> Path:
    """SEA trained briefly on the raw shop of tests/conftest.py (original user and item
    ids: A0003Z, B000000001, ...), with its image vectors as the one modality."""
    root = tmp_path_factory.mktemp("serve")
    raw = write_raw_shop(root / "raw")
    data, run = root / "shop", root / "run"
    assert main(["prepare", "csv", "--interactions", str(raw / "ratings.csv"),
                 "--user-col", "user", "--item-col", "item", "--rating-col", "rating",
                 "--time-col", "time", "--out", str(data)]) == 0
    assert main(["features", "align", "--vectors", str(raw / "image_vectors.parquet"),
                 "--dataset", str(data), "--modality", "image", "--missing", "mean"]) == 0
    assert main(["train", "--data", str(data), "--model", "sea", "--epochs", "3",
                 "--out", str(run), "train.progress=false"]) == 0
    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(run: Path, port: int, *extra: str) -> subprocess.Popen:
    """`searec serve` in its own process; returns once /health answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "searec", "serve", "--run", str(run), "--port", str(port),
         "--log-level", "warning", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"searec serve exited {proc.returncode}:\n"
                                 f"{proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("searec serve did not answer /health within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def server(shop_run) -> Iterator[str]:
    """Base URL of a running `searec serve --run shop_run --max-batch 50`."""
    port = free_port()
    proc = start_server(shop_run, port, "--max-batch", "50")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)
