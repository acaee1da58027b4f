"""train.negatives: where BPR negatives come from, through the trainer."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from searec.config import build_config
from searec.data import Dataset
from searec.data.load import load_dataset
from searec.errors import ConfigError
from searec.graphs import InteractionGraph
from searec.runs import build_model, train
from searec.training import Trainer

COLD = {"data": {"synthetic": {"n_users": 80, "n_items": 60, "interactions_per_user": 8},
                 "cold_items": 0.25, "cold_users": "drop"},
        "model": {"name": "lightgcn", "embedding_dim": 8},
        "train": {"progress": False, "batch_size": 128, "epochs": 1}}


def _trainer(cfg, dataset, run_dir) -> Trainer:
    return Trainer(build_model(cfg, dataset), dataset,
                   InteractionGraph.from_train(dataset.train), cfg.train, cfg.eval,
                   run_dir, torch.device("cpu"), log=lambda _m: None)


@pytest.mark.parametrize("pool", ["catalogue", "trained"])
def test_the_pool_decides_whether_cold_items_are_drawn(pool, tmp_path):
    cfg = build_config({**COLD, "train": {**COLD["train"], "negatives": pool}})
    dataset = load_dataset(cfg.data)
    cold = np.flatnonzero(np.diff(dataset.train.tocsc().indptr) == 0)
    assert len(cold) >= 10
    trainer = _trainer(cfg, dataset, tmp_path)
    users, _ = dataset.train_pairs()
    drawn = trainer.sampler.sample(np.tile(users, 5), np.random.default_rng(0))
    assert np.isin(drawn, cold).any() == (pool == "catalogue")


def test_trained_pool_trains_a_run(tmp_path):
    cfg = build_config({**COLD, "train": {**COLD["train"], "negatives": "trained"}})
    metrics = train(cfg, tmp_path / "run", log=lambda _m: None)
    assert np.isfinite(metrics["test"]["recall@20"])


def test_a_user_with_every_trained_item_is_a_config_error(tmp_path):
    train_m = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    held = sp.csr_matrix(np.array([[0, 0, 1], [1, 0, 0]], dtype=np.float32))
    dataset = Dataset("toy", 2, 3, train_m, held, held,
                      modalities={"image": np.eye(3, dtype=np.float32)})
    cfg = build_config({"model": {"name": "bpr", "embedding_dim": 4},
                        "train": {"progress": False, "negatives": "trained"}})
    with pytest.raises(ConfigError, match=r"train\.negatives=trained: user 0 interacted with "
                       "every item that has training interactions"):
        _trainer(cfg, dataset, tmp_path)
