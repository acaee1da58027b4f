"""The cold-item path (model.cold_start.method=mapper): fitted after training on the best
checkpoint, calibrated on the cold-validation items, saved with the model, used for every
item without training interactions (cold items, items added later), each item from its
own features only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import searec
from searec.config import load_config
from searec.inference.items import add_items, load_catalogue
from searec.inference.recommend import recommendation_frame
from searec.inference.serving import RunService
from searec.models.cold import ColdItemMapper
from searec.runs import load_run
from searec.training.checkpoint import BEST, read_checkpoint

SMALL = ["data.synthetic.n_users=150", "data.synthetic.n_items=120",
         "data.synthetic.interactions_per_user=12", "data.synthetic.modalities={image: 24, "
         "text: 16}", "train.progress=false", "train.lr=0.01", "data.cold_users=drop"]
MAPPER = ["model.cold_start.method=mapper", "model.cold_start.steps=150"]


def _train(run: Path, *extra: str) -> Path:
    searec.train(load_config(None, ["model.name=sea", "train.epochs=6", *SMALL, *extra]),
                 run, log=lambda _m: None)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cold_start")
    return {"cold": _train(root / "cold", "data.cold_items=0.2", *MAPPER),
            "plain": _train(root / "plain", *MAPPER),
            "off": _train(root / "off", "data.cold_items=0.2")}


def _features(model, items: np.ndarray) -> dict[str, torch.Tensor]:
    return {m: f[torch.from_numpy(items)] for m, f in model.raw_features().items()}


def test_cold_items_take_the_calibrated_mapper_and_the_run_reports_both(runs):
    metrics = json.loads((runs["cold"] / "metrics.json").read_text())
    report = metrics["cold_start"]
    assert report["method"] == "mapper" and report["holdout_items"] == 0  # real cold items
    # the calibration kept is the grid's best on validation
    chosen = f"{report['anchor_scale']},{report['spread_scale']}"
    assert report["calibration"][chosen] == max(report["calibration"].values())
    assert len(report["calibration"]) == 3 * 6
    # the same run without the path, for the paired comparison, and cold-valid metrics
    plain = metrics["without_cold_path"]
    assert {"valid", "test", "test_warm", "test_cold", "valid_cold"} <= set(plain)
    assert "valid_cold" in metrics
    # fitting happens after training, from its own random stream: without the path, the
    # run is exactly the same run with method none
    off = json.loads((runs["off"] / "metrics.json").read_text())
    for split in ("valid", "test", "test_warm", "test_cold", "valid_cold"):
        assert plain[split] == off[split], split
    # planted-factor data (features carry the items' factors): the path finds cold items
    assert metrics["test_cold"]["recall@20"] > off["test_cold"]["recall@20"] + 0.05

    _, dataset, model = load_run(runs["cold"])  # the fitted mapper comes back with best.pt
    assert model.cold_mapper is not None and model.cold_mapper.is_fitted
    cold = dataset.cold_items()
    _, item_rep = model.representations()
    expected = model.cold_mapper.represent(_features(model, cold))
    torch.testing.assert_close(item_rep[torch.from_numpy(cold)], expected)
    # one item's representation does not depend on the others mapped with it
    alone = torch.cat([model.cold_mapper.represent(_features(model, cold[i : i + 1]))
                       for i in range(5)])
    torch.testing.assert_close(alone, expected[:5], rtol=1e-5, atol=1e-6)


def test_an_ordinary_run_calibrates_on_warm_items_set_aside(runs):
    report = json.loads((runs["plain"] / "metrics.json").read_text())["cold_start"]
    assert report["holdout_items"] > 0 and report["fit_items"] > report["holdout_items"]
    assert "without_cold_path" not in json.loads(
        (runs["plain"] / "metrics.json").read_text())  # no cold item to compare on


def test_method_none_keeps_the_backbone_and_saves_no_mapper(runs):
    metrics = json.loads((runs["off"] / "metrics.json").read_text())
    assert "cold_start" not in metrics and "without_cold_path" not in metrics
    state = read_checkpoint(runs["off"] / BEST)["model"]
    assert not any(k.startswith("cold_mapper.") for k in state)
    assert ColdItemMapper.from_state(state, {"image": 24, "text": 16}) is None


def test_the_mapper_fits_the_warm_items_better_than_their_mean(runs):
    """A check that the regression learned: on the warm items it was fitted to, its
    output is closer to their trained representations than their mean is."""
    _, dataset, model = load_run(runs["cold"])
    with torch.no_grad():
        model.use_cold_path = False
        model.prepare_inference(searec.graphs.InteractionGraph.from_train(dataset.train))
    warm = np.setdiff1d(np.arange(dataset.n_items), dataset.cold_items())
    _, reps = model.representations()
    target = reps[torch.from_numpy(warm)]
    with torch.no_grad():
        mapped = model.cold_mapper.raw(_features(model, warm))
    error = ((mapped - target) ** 2).sum(1).mean()
    baseline = ((target - target.mean(0)) ** 2).sum(1).mean()
    assert error < 0.5 * baseline


def test_items_added_to_a_mapper_run_are_mapped_alone_and_reach_top_lists(runs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs["cold"], run)
    _, dataset, model = load_run(run)
    raw = searec.load_dataset(load_config(run / "config.yaml", []).data)
    popular = np.argsort(-np.asarray(dataset.train.sum(0)).ravel())[:3]
    feats = {m: f[popular].copy() for m, f in raw.modalities.items()}
    add_items(run, feats, ids=["n0", "n1", "n2"], log=lambda _m: None)
    _, extended, model = load_catalogue(run)
    _, item_rep = model.representations()
    mapper = model.cold_mapper
    expected = mapper.represent({m: torch.from_numpy(f) for m, f in feats.items()})
    torch.testing.assert_close(item_rep[-3:], expected)
    # a running service scores the same features the same, alone or with others
    service = RunService(run)
    alone = service.score_items({m: f[:1].tolist() for m, f in feats.items()}, [0, 1])
    both = service.score_items({m: f.tolist() for m, f in feats.items()}, [0, 1])
    for a, b in zip(alone, both, strict=True):
        np.testing.assert_allclose(a["scores"][0], b["scores"][0], rtol=1e-5, atol=1e-6)
    frame = recommendation_frame(model, extended, np.arange(extended.n_users), k=20)
    assert frame["item_id"].isin(["n0", "n1", "n2"]).any()


def test_recommend_with_k_beyond_the_catalogue_returns_no_masked_items(runs):
    _, dataset, model = load_run(runs["off"])
    frame = recommendation_frame(model, dataset, np.arange(5), k=10_000)
    assert np.isfinite(frame["score"]).all()
    seen = np.diff(dataset.train.indptr)[:5]
    counts = frame.groupby(frame.columns[0], sort=False).size().to_numpy()
    np.testing.assert_array_equal(counts, dataset.n_items - seen)
