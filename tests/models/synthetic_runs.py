"""Whole runs on the embedded synthetic data, shared by the model tests: each new model
must clearly beat popularity there (test_end_to_end.py does the same for LightGCN)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from searec.config import load_config
from searec.runs import train

COMMON = ["data.synthetic.n_users=600", "data.synthetic.n_items=400", "train.progress=false"]


def synthetic_recall(out: Path, model: str, *overrides: str) -> float:
    """Test recall@20 of ``model`` trained with ``overrides`` on the shared data."""
    cfg = load_config(None, [f"model.name={model}", *COMMON, *overrides])
    return train(cfg, out / model, log=lambda _: None)["test"]["recall@20"]


@functools.cache
def popularity_recall() -> float:
    """Popularity's test recall@20 on the same data (deterministic: computed once)."""
    with tempfile.TemporaryDirectory() as out:
        return synthetic_recall(Path(out), "pop")
