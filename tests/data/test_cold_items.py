"""The cold-start item protocol: held-out items have no training interaction, the rest of
the split is untouched, and metrics.json reports test metrics over warm and cold items."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import searec
from searec.config import load_config
from searec.data.cold import hold_out_items, with_cold_items
from searec.data.prepare import prepare_interactions
from searec.errors import DataError
from searec.evaluation import evaluate_model


def test_hold_out_items_splits_the_drawn_items_into_disjoint_valid_and_test_items():
    rng = np.random.default_rng(0)
    items = rng.integers(0, 50, size=2000)
    labels = rng.choice([0, 1, 2], p=[0.8, 0.1, 0.1], size=2000)
    new, cold = hold_out_items(items, labels, 60, 0.2, seed=3)
    active = np.unique(items)
    assert len(cold) == round(0.2 * len(active)) and set(cold) <= set(active)
    is_cold = np.isin(items, cold)
    assert not ((new == 0) & is_cold).any()  # no training row of a cold item is left
    np.testing.assert_array_equal(new[~is_cold], labels[~is_cold])  # warm rows untouched
    # ColdRec: each cold item's interactions all go to valid or all to test, half and half
    valid_items = set(items[is_cold & (new == 1)])
    test_items = set(items[is_cold & (new == 2)])
    assert not valid_items & test_items
    assert valid_items | test_items == set(cold)
    assert len(valid_items) == (len(cold) + 1) // 2
    again, cold_again = hold_out_items(items, labels, 60, 0.2, seed=3)
    np.testing.assert_array_equal(again, new)
    np.testing.assert_array_equal(cold_again, cold)
    assert not np.array_equal(hold_out_items(items, labels, 60, 0.2, seed=4)[1], cold)
    with pytest.raises(DataError, match=r"fraction must be in \(0, 1\)"):
        hold_out_items(items, labels, 60, 1.0, seed=0)
    with pytest.raises(DataError, match="is no item"):
        hold_out_items(items, labels, 60, 0.001, seed=0)


def test_dataset_and_prepare_hold_out_the_same_way():
    ds = searec.make_synthetic(load_config(None, []).data.synthetic)
    cold_ds = with_cold_items(ds, 0.2, seed=1)
    cold = cold_ds.cold_items()
    # the drawn items, plus any the data already had (seen only in valid/test)
    natural = set(ds.cold_items())
    assert len(natural) < 5
    assert len(set(cold) - natural) in (round(0.2 * ds.n_items) - k for k in range(5))
    assert cold_ds.train[:, cold].nnz == 0 and cold_ds.test[:, cold].nnz > 0
    total = ds.train.nnz + ds.valid.nnz + ds.test.nnz
    assert cold_ds.train.nnz + cold_ds.valid.nnz + cold_ds.test.nnz == total
    frame = pd.DataFrame({"user": np.repeat(np.arange(40), 10).astype(str),
                          "item": (np.arange(400) * 7 % 30).astype(str)})
    prepared = prepare_interactions(frame, k_core=1, seed=2, cold_items=0.3)
    table = prepared.table
    cold_items = set(table["itemID"]) - set(table.loc[table["x_label"] == 0, "itemID"])
    assert len(cold_items) == round(0.3 * 30)
    assert prepared.report.params["cold_items"] == 0.3


@pytest.fixture(scope="module")
def cold_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cold")
    common = ["data.cold_items=0.2", "data.cold_users=drop", "train.progress=false",
              "data.synthetic.n_users=300", "data.synthetic.n_items=200"]
    out = {}
    for model, extra in (("itemknn", []), ("lightgcn", ["train.epochs=3"]),
                         ("pop", [])):
        run = root / model
        searec.train(load_config(None, [f"model.name={model}", *common, *extra]), run,
                     log=lambda _m: None)
        out[model] = run
    return out


def test_metrics_over_warm_and_cold_items(cold_runs):
    metrics = json.loads((cold_runs["itemknn"] / "metrics.json").read_text())
    assert metrics["cold_items"] == 40
    cfg, dataset, model = searec.load_run(cold_runs["itemknn"])
    from searec.graphs import InteractionGraph

    graph = InteractionGraph.from_train(dataset.train)
    cold = dataset.cold_items()
    by_hand = evaluate_model(model, graph, dataset, "test", cfg.eval, items=cold)
    assert metrics["test_cold"]["recall@20"] == pytest.approx(by_hand["recall@20"])
    users_with_cold = int((np.diff(dataset.test[:, cold].tocsr().indptr) > 0).sum())
    assert metrics["test_cold_users"] == users_with_cold
    # features carry the planted factors: the content baseline finds cold items far
    # better than chance (20 of 200 items)
    assert metrics["test_cold"]["recall@20"] > 2 * 20 / 200
    assert set(metrics["test_warm"]) == set(metrics["test"])
    # ranked among the cold items alone, a cold item can only climb
    among = evaluate_model(model, graph, dataset, "test", cfg.eval, items=cold,
                           rank_only_items=True)
    assert metrics["test_cold_catalogue"]["recall@20"] == pytest.approx(among["recall@20"])
    assert among["recall@20"] >= by_hand["recall@20"] and among["recall@20"] > 0.3


def test_models_without_features_report_cold_metrics_as_not_applicable(cold_runs):
    for model in ("lightgcn", "pop"):
        metrics = json.loads((cold_runs[model] / "metrics.json").read_text())
        assert metrics["test_cold"] is None
        assert f"model {model!r} scores items from interactions only" in \
            metrics["test_cold_note"]
        assert metrics["test_warm"]["recall@20"] > 0
    table = searec.runs.format_metrics(metrics)
    assert "test_cold n/a (model 'pop' scores items from interactions only" in table


def test_backfill_restores_the_sections_training_writes(cold_runs, tmp_path):
    """scripts/backfill_cold_metrics.py gives a run trained before the cold-start
    sections existed exactly what training now writes, and leaves a complete run alone."""
    import shutil

    from tests.repo_files import load_module

    backfill = load_module("scripts/backfill_cold_metrics.py")
    for model in ("itemknn", "pop"):
        run = tmp_path / model
        shutil.copytree(cold_runs[model], run)
        written = json.loads((run / "metrics.json").read_text())
        assert backfill.backfill(run) == "left as it is"
        sections = {k for k in written if k.startswith(("test_warm", "test_cold"))}
        sections.add("cold_items")
        (run / "metrics.json").write_text(json.dumps(
            {k: v for k, v in written.items() if k not in sections}))
        assert backfill.backfill(run).startswith("added ")
        assert json.loads((run / "metrics.json").read_text()) == written
