"""A small trained run with original ids, and a real `searec serve` on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from searec.cli import main
from searec.inference.serving.process import free_port, spawn_server, stop_server
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
                 "--out", str(run), "train.progress=false",
                 "model.cold_start.method=mapper", "model.cold_start.steps=100"]) == 0
    return run


def start_server(run: Path, port: int, *extra: str, plugins: tuple | list = ()):
    """`searec serve` in its own process, once /health answers."""
    return spawn_server(run, port, ["--log-level", "warning", *extra], timeout=120,
                        plugins=plugins)


@pytest.fixture(scope="session")
def server(shop_run) -> Iterator[str]:
    """Base URL of a running `searec serve --run shop_run --max-batch 50`."""
    port = free_port()
    proc = start_server(shop_run, port, "--max-batch", "50")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)
