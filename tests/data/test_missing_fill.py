"""Items without a modality (all-zero rows): data.missing_fill (mean, cross) and SEA's
model.separation.fill_missing from the other modalities' generic parts."""

from __future__ import annotations

import numpy as np
import torch

import searec
from searec.config import load_config
from searec.data.missing import fill_missing, missing_rows
from searec.runs import build_model


def _pair(n: int = 400, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, 6)).astype(np.float32)
    b = (a @ rng.standard_normal((6, 4)) + 0.05 * rng.standard_normal((n, 4))
         ).astype(np.float32) + 3.0
    gone = rng.choice(n, 60, replace=False)
    damaged = b.copy()
    damaged[gone] = 0.0
    return {"a": a, "b": damaged}, b


def test_mean_and_cross_fill_only_missing_rows_and_cross_predicts_them():
    feats, truth = _pair()
    gaps = missing_rows(feats["b"])
    assert gaps.sum() == 60 and not missing_rows(feats["a"]).any()
    assert fill_missing(feats, "none") is feats
    mean = fill_missing(feats, "mean")
    np.testing.assert_array_equal(mean["a"], feats["a"])
    np.testing.assert_array_equal(mean["b"][~gaps], feats["b"][~gaps])
    np.testing.assert_allclose(mean["b"][gaps], np.broadcast_to(
        feats["b"][~gaps].mean(0), (60, 4)), rtol=1e-5)
    cross = fill_missing(feats, "cross")
    np.testing.assert_array_equal(cross["b"][~gaps], feats["b"][~gaps])
    err_cross = np.abs(cross["b"][gaps] - truth[gaps]).mean()
    err_mean = np.abs(mean["b"][gaps] - truth[gaps]).mean()
    assert err_cross < 0.1 * err_mean  # b is a linear function of a, plus a little noise


def test_new_rows_are_filled_with_the_fitted_rows_statistics_only():
    feats, _ = _pair()
    extra = {"a": np.ones((2, 6), np.float32), "b": np.zeros((2, 4), np.float32)}
    both = {m: np.concatenate([feats[m], extra[m]]) for m in feats}
    alone = fill_missing(both, "cross", fit_rows=400)
    again = fill_missing({m: np.concatenate([feats[m], extra[m][:1]]) for m in feats},
                         "cross", fit_rows=400)
    np.testing.assert_allclose(alone["b"][400], again["b"][400], rtol=1e-5)


def test_missing_fill_config_applies_before_training():
    common = ["data.synthetic.n_users=80", "data.synthetic.n_items=60",
              "data.synthetic.modalities={image: 8, text: 6}",
              "data.perturb=[{kind: drop, modality: image, fraction: 0.3, fill: zero}]"]
    zero = searec.load_dataset(load_config(None, common).data)
    assert missing_rows(zero.modalities["image"]).sum() == 18
    filled = searec.load_dataset(load_config(None, [*common, "data.missing_fill=cross"]).data)
    assert not missing_rows(filled.modalities["image"]).any()


def test_sea_fills_a_missing_modality_from_the_other_generic_parts(tmp_path):
    cfg = load_config(None, [
        "data.synthetic.n_users=80", "data.synthetic.n_items=60",
        "data.synthetic.modalities={image: 8, text: 6}",
        "data.perturb=[{kind: drop, modality: image, fraction: 0.3, fill: zero}]",
        "model.separation.fill_missing=true", "model.separation.proj_dim=8"])
    dataset = searec.load_dataset(cfg.data)
    model = build_model(cfg, dataset)
    gaps = torch.from_numpy(missing_rows(dataset.modalities["image"]))
    filled = model.modality_inputs()
    plain = model.separation.project(model.raw_features())
    torch.testing.assert_close(filled["image"][~gaps], plain["image"][~gaps])
    torch.testing.assert_close(filled["text"], plain["text"])
    assert not torch.allclose(filled["image"][gaps], plain["image"][gaps])
    # generic part: a regression on the text generic part, so items differ;
    # unique part: one mean for every filled item
    generic, unique = model.separation.split["image"].parts(filled["image"][gaps])
    assert generic.std(0).max() > 0 and torch.allclose(unique, unique[:1].expand_as(unique))
    # gradients reach the text projection through the filled rows
    model.zero_grad()
    generic.sum().backward()
    assert model.separation.split["text"].proj.weight.grad.abs().sum() > 0
    trained = cfg.model_copy(update={"train": cfg.train.model_copy(
        update={"epochs": 2, "progress": False})})
    metrics = searec.train(trained, tmp_path / "run", log=lambda _m: None)
    assert np.isfinite(metrics["test"]["recall@20"])


def test_a_modality_can_go_missing_for_new_items_only():
    """data.perturb drop with items: new: the share is taken of the items without training
    interactions (the held-out cold items), and no trained item loses anything."""
    import pytest

    from searec.errors import ConfigError

    cfg = load_config(None, [
        "data.synthetic.n_users=120", "data.synthetic.n_items=100", "data.cold_items=0.2",
        "data.perturb=[{kind: drop, modality: image, fraction: 0.5, fill: zero, "
        "items: new}]"])
    dataset = searec.load_dataset(cfg.data)
    new = dataset.cold_items()
    gone = np.flatnonzero(missing_rows(dataset.modalities["image"]))
    assert len(new) >= 10 and len(gone) == round(0.5 * len(new))
    assert set(gone) <= set(new)
    complete = searec.load_dataset(load_config(None, [
        "data.synthetic.n_users=120", "data.synthetic.n_items=100",
        "data.cold_items=0.2"]).data)
    np.testing.assert_array_equal(complete.cold_items(), new)  # the same new items
    warm = np.setdiff1d(np.arange(dataset.n_items), gone)
    np.testing.assert_array_equal(dataset.modalities["image"][warm],
                                  complete.modalities["image"][warm])
    with pytest.raises(ConfigError, match=r"perturb\[0\].items': new, but every item"):
        searec.load_dataset(load_config(None, [
            "data.synthetic.n_users=120", "data.synthetic.n_items=100",
            "data.perturb=[{kind: drop, modality: image, items: new}]"]).data)
    with pytest.raises(ConfigError, match="'items' applies to kind=drop only"):
        load_config(None, ["data.perturb=[{kind: noise, modality: image, items: new}]"])
