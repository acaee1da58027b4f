"""train.precision: bfloat16 runs the forward pass under autocast, everything kept float32;
auto chooses it where the hardware multiplies bf16."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from searec.config import build_config
from searec.data.load import load_dataset
from searec.graphs import InteractionGraph, SparseOperator, propagated_sum
from searec.runs import build_model
from searec.training import Trainer

SMALL = {"data": {"synthetic": {"n_users": 60, "n_items": 40, "interactions_per_user": 6}},
         "model": {"name": "sea", "embedding_dim": 8, "encoder_hidden": 16},
         "train": {"progress": False, "batch_size": 64, "epochs": 1, "seed": 3}}


def _step(precision: str, tmp_path) -> tuple[dict[str, float], Trainer]:
    cfg = build_config({**SMALL, "train": {**SMALL["train"], "precision": precision}})
    dataset = load_dataset(cfg.data)
    torch.manual_seed(0)
    trainer = Trainer(build_model(cfg, dataset), dataset,
                      InteractionGraph.from_train(dataset.train), cfg.train, cfg.eval,
                      tmp_path / precision, torch.device("cpu"), log=lambda _m: None)
    users, items = dataset.train_pairs()
    batch = (users[:64], items[:64], items[::-1][:64].copy())
    parts, _ = trainer.train_step(batch, 1)
    return {k: float(v.detach()) for k, v in parts.items()}, trainer


def test_a_bf16_step_computes_the_same_loss_to_bf16_precision(tmp_path):
    full, _ = _step("float32", tmp_path)
    half, trainer = _step("bfloat16", tmp_path)
    assert half.keys() == full.keys()
    assert half["bpr"] == pytest.approx(full["bpr"], rel=2e-2)
    assert np.isfinite(list(half.values())).all()
    # parameters (and so the optimiser's state) stay float32
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_sparse_products_stay_float32_under_autocast():
    adj = SparseOperator.from_scipy(sp.random(30, 30, density=0.2, random_state=0,
                                              format="csr", dtype=np.float32) + sp.eye(30))
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = adj @ x.bfloat16()
        summed = propagated_sum(adj, x, 2)
    assert inside.dtype == summed.dtype == torch.float32
    torch.testing.assert_close(inside, adj @ x.bfloat16().float())
    torch.testing.assert_close(summed, propagated_sum(adj, x, 2))


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_is_bfloat16_only_where_the_cpu_multiplies_bf16(monkeypatch, native):
    from searec.training.trainer import has_bf16_arithmetic, resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu = torch.device("cpu")
    assert has_bf16_arithmetic(cpu) is native
    assert resolve_precision("auto", cpu) == ("bfloat16" if native else "float32")
    # a precision asked for by name is kept whatever the hardware
    assert resolve_precision("float32", cpu) == "float32"
    assert resolve_precision("bfloat16", cpu) == "bfloat16"


def test_a_run_says_which_precision_auto_chose(monkeypatch, tmp_path):
    from searec.runs import train

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    cfg = build_config({**SMALL, "train": {**SMALL["train"], "precision": "auto"}})
    lines: list[str] = []
    metrics = train(cfg, tmp_path / "run", log=lines.append)
    assert metrics["precision"] == "bfloat16"
    assert any("precision bfloat16 (train.precision=auto)" in line for line in lines)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    metrics = train(cfg, tmp_path / "run", log=lines.append, overwrite=True)
    assert metrics["precision"] == "float32"
