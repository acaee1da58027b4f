"""data.feature_norm: per-modality feature scaling, and a modality with row norms in the
thousands (unscaled features) that must not wreck q, VBPR, FREEDOM or SEA."""

from __future__ import annotations

import math

import numpy as np
import pytest

from searec.config import load_config
from searec.data.load import load_dataset, normalize_features
from searec.errors import ConfigError
from searec.runs import train

SMALL = ["data.synthetic.n_users=120", "data.synthetic.n_items=80",
         "data.synthetic.interactions_per_user=10", "train.progress=false", "train.epochs=3",
         "train.threads=1"]
LOUD = "data.perturb=[{kind: scale, modality: audio, factor: 1500}]"  # row norms ~10^4


def test_normalisations_hand_checked():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [6.0, 0.0], [0.0, 2.0]], np.float32)
    np.testing.assert_allclose(normalize_features(x, "l2"),
                               [[0.6, 0.8], [0, 0], [1, 0], [0, 1]], rtol=1e-6)
    z = normalize_features(x, "standardize")
    present = [0, 2, 3]  # the all-zero row is an item without the modality: it stays zero
    np.testing.assert_allclose(z[present].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(z[present].std(axis=0), 1, rtol=1e-5)
    assert not z[1].any()
    const = np.array([[1.0, 5.0], [2.0, 5.0]], np.float32)
    assert np.isfinite(normalize_features(const, "standardize")).all()
    assert normalize_features(x, "none") is not None and normalize_features(x, "none").dtype \
        == np.float32


def test_one_method_or_one_per_modality():
    ds = load_dataset(load_config(None, [*SMALL, "data.feature_norm={audio: l2}"]).data)
    np.testing.assert_allclose(np.linalg.norm(ds.modalities["audio"], axis=1), 1, rtol=1e-5)
    assert not np.allclose(np.linalg.norm(ds.modalities["image"], axis=1), 1)
    with pytest.raises(ConfigError, match=r"data\.feature_norm.*no modality 'sound'"):
        load_dataset(load_config(None, [*SMALL, "data.feature_norm={sound: l2}"]).data)
    with pytest.raises(ConfigError, match="expected one of none, l2, standardize"):
        load_config(None, ["data.feature_norm=l1"])


def _run(tmp_path, name, *overrides):
    return train(load_config(None, [*SMALL, *overrides]), tmp_path / name, log=lambda _m: None)


@pytest.mark.parametrize(("model", "extra"), [
    ("sea", []), ("vbpr", ["model.separation={}"]), ("freedom", ["model.separation={}"])])
def test_unscaled_modality_trains_and_normalising_removes_the_scale(tmp_path, model, extra):
    base = [f"model.name={model}", *extra]
    raw = _run(tmp_path, "raw", *base, LOUD)  # no normalisation: still finite
    assert all(math.isfinite(v) for v in raw["valid"].values())
    for method in ("l2", "standardize"):
        loud = _run(tmp_path, f"loud-{method}", *base, LOUD, f"data.feature_norm={method}")
        quiet = _run(tmp_path, f"quiet-{method}", *base, f"data.feature_norm={method}")
        # the same features up to float rounding: the same ranking quality
        for key, value in quiet["valid"].items():
            assert loud["valid"][key] == pytest.approx(value, abs=0.02), (method, key)
