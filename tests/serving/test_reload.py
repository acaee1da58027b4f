"""A running service sees items added after it started (RunService.refresh / watch), and a
query always answers from one item table."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

import searec
from searec.config import load_config
from searec.inference.items import CURRENT, ITEMS_DIR, CatalogueError, add_items
from searec.inference.serving import RunService

SMALL = ["model.name=sea", "train.epochs=4", "data.synthetic.n_users=120",
         "data.synthetic.n_items=90", "data.synthetic.modalities={image: 16, text: 12}",
         "train.progress=false", "model.cold_start.method=mapper",
         "model.cold_start.steps=100"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("reload") / "run"
    searec.train(load_config(None, SMALL), run, log=lambda _m: None)
    return run


def _add(run, ids):
    cfg = load_config(run / "config.yaml", [])
    raw = searec.load_dataset(cfg.data)
    feats = {m: f[: len(ids)].copy() + 0.01 for m, f in raw.modalities.items()}
    add_items(run, feats, ids=ids, log=lambda _m: None)


def test_refresh_serves_a_table_added_after_start_and_keeps_a_good_one(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    service = RunService(run)
    assert service.info()["items"] == 90 and not service.refresh()
    _add(run, ["new-a", "new-b"])
    assert service.info()["items"] == 90  # nothing changes until it looks
    assert service.refresh()
    info = service.info()
    assert info["items"] == 92 and info["item_table"] == 1
    assert service.similar(["new-a"], k=3)[0]["item"] == "new-a"
    found = {i for row in service.recommend(list(range(120)), k=20) for i in row["items"]}
    assert found & {"new-a", "new-b"}  # mapped items compete in real top-k lists
    # a damaged pointer is an error; the service keeps serving what it has
    (run / ITEMS_DIR / CURRENT).write_text("7\n")
    with pytest.raises(CatalogueError):
        service.refresh()
    assert service.info()["items"] == 92
    assert service.recommend([0], k=5)[0]["items"]


def test_watch_picks_up_an_addition_while_serving(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    service = RunService(run)
    messages: list[str] = []
    service.watch(0.05, log=messages.append)
    _add(run, ["late"])
    deadline = time.monotonic() + 20
    while service.item_table != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.item_table == 1 and service.info()["items"] == 91
    assert any("v1" in m for m in messages)
    scores = service.score_items({"image": np.zeros((1, 16)).tolist(),
                                  "text": np.zeros((1, 12)).tolist()}, [0])
    assert np.isfinite(scores[0]["scores"]).all()
