"""Separation diagnostics (Gaussian MI, projection plot) and robustness perturbations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from searec.cli import main
from searec.config import Perturbation, load_config
from searec.data import make_synthetic
from searec.data.perturb import apply_perturbations
from searec.errors import ConfigError
from searec.io import read_csv_rows
from searec.separation.diagnostics import gaussian_mi


def correlated(n: int, d: int, rho: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize(("d", "rho"), [(1, 0.5), (4, 0.8), (8, 0.95)])
def test_gaussian_mi_matches_closed_form(d: int, rho: float) -> None:
    x, y = correlated(50_000, d, rho)
    exact = -0.5 * d * math.log(1 - rho**2)
    assert gaussian_mi(x, y, ridge=0.0) == pytest.approx(exact, rel=0.02, abs=0.01)


def test_gaussian_mi_independent_and_invariant() -> None:
    x, y = correlated(50_000, 4, 0.0)
    assert gaussian_mi(x, y) < 0.01
    x, y = correlated(50_000, 4, 0.8)
    mix = torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # MI is invariant to invertible linear maps of either side, and to scale
    assert gaussian_mi(x @ mix, 100 * y, ridge=0.0) == pytest.approx(
        gaussian_mi(x, y, ridge=0.0), rel=1e-6)
    # a constant column does not break the estimate (ridge)
    x0 = torch.cat([x, torch.zeros(len(x), 1, dtype=x.dtype)], dim=1)
    assert math.isfinite(gaussian_mi(x0, y))


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=60, n_items=50, modalities={"image": 6, "text": 4}, seed=2)


def test_perturbations(data) -> None:
    img = data.modalities["image"]
    noisy = apply_perturbations(data, [Perturbation(kind="noise", modality="image")])
    x = noisy.modalities["image"]
    assert x.shape == img.shape and not np.allclose(x, img)
    np.testing.assert_allclose(x.mean(0), img.mean(0), atol=3 * img.std(0).max() / 7)
    assert noisy.modalities["text"] is data.modalities["text"]
    dup = apply_perturbations(data, [Perturbation(kind="duplicate", modality="text",
                                                  source="image")])
    t = dup.modalities["text"]
    assert t.shape == (50, 4)
    # a linear function of image: regressing text on image is exact
    coef, *_ = np.linalg.lstsq(img, t, rcond=None)
    np.testing.assert_allclose(img @ coef, t, atol=1e-4)
    drop = apply_perturbations(data, [Perturbation(kind="drop", modality="image",
                                                   fraction=0.3, fill="zero")]
                               ).modalities["image"]
    assert (np.abs(drop).sum(1) == 0).sum() == 15
    meanfill = apply_perturbations(data, [Perturbation(kind="drop", modality="image",
                                                       fraction=0.3)])  # mean by default
    assert (np.abs(meanfill.modalities["image"] - img.mean(0)).sum(1) < 1e-6).sum() == 15
    scaled = apply_perturbations(data, [Perturbation(kind="scale", modality="image",
                                                     factor=100)])
    np.testing.assert_allclose(scaled.modalities["image"], img * 100, rtol=1e-6)


def test_perturbation_config_errors() -> None:
    with pytest.raises(ConfigError, match="'source' is required by kind=duplicate"):
        load_config(None, ["data.perturb=[{kind: duplicate, modality: image}]"])
    with pytest.raises(ConfigError, match="fraction"):
        load_config(None, ["data.perturb=[{kind: drop, modality: image, fraction: 2}]"])
    with pytest.raises(ConfigError, match=r"perturb\[0\].modality': no modality 'imag'"):
        apply_perturbations(make_synthetic(n_users=30, n_items=20, seed=0),
                            [Perturbation(kind="noise", modality="imag")])


def test_sea_logs_separation_mi_and_diagnose_plots(tmp_path: Path, capsys) -> None:
    run = tmp_path / "sea"
    small = ["data.synthetic.n_users=150", "data.synthetic.n_items=90", "train.epochs=3",
             "train.progress=false", "model.separation.distancing=club",
             "model.separation.distancing.q_steps=2",
             "model.separation.mi_items=batch"]
    assert main(["train", "--out", str(run), *small]) == 0
    rows = read_csv_rows(run / "history.csv")
    cols = [c for c in rows[0] if c.startswith("diag_mi_")]
    assert "diag_mi_generic_unique_image" in cols and "diag_mi_generic_image_text" in cols
    assert all(float(r[c]) >= 0 for r in rows for c in cols)
    assert main(["diagnose", str(run), "--folds", "2", "--steps", "30", "--batch", "32"]) == 0
    assert "held-out MI" in capsys.readouterr().out
    diag = json.loads((run / "diagnostics.json").read_text())
    assert diag["heldout_settings"]["batch"] == 32
    assert main(["diagnose", str(run), "--batch", "1"]) == 2
    assert "--batch must be at least 2, got 1" in capsys.readouterr().err
    assert set(diag["gaussian_mi_at_best"]) == {c[5:] for c in cols}
    held = diag["heldout_mi"]
    assert set(held) == {"generic_unique_image", "generic_unique_text", "generic_unique_audio",
                         "generic_image_text", "generic_image_audio", "generic_text_audio"}
    assert all(len(e["folds"]) == 2 and math.isfinite(e["mean"])
               for estimates in held.values() for e in estimates.values())
    recovery = diag["planted_recovery"]  # the embedded synthetic data has planted factors
    assert {"generic_image_to_generic", "unique_audio_to_unique",
            "generic_text_to_unique"} <= set(recovery)
    assert all(-1.0 < v <= 1.0 for v in recovery.values())
    assert diag["panels"] == ["alignment", "distancing image", "distancing text",
                              "distancing audio"]
    assert (run / "figures" / "separation_projection.png").stat().st_size > 5000
    assert main(["report", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "separation_mi.png" in report and "separation_projection.png" in report
    assert "Held-out MI" in report  # the report keeps (and shows) diagnose's estimates
    assert "heldout_mi" in json.loads((run / "diagnostics.json").read_text())
    capsys.readouterr()
    lg = tmp_path / "lg"
    assert main(["train", "--model", "lightgcn", "--out", str(lg), *small[:4]]) == 0
    assert main(["diagnose", str(lg)]) == 2
    assert "no separation component" in capsys.readouterr().err


def test_diagnose_a_run_whose_distancing_compares_the_parts_as_they_are(tmp_path: Path,
                                                                        monkeypatch):
    """hsic has no distancing transforms: diagnose measures and plots without them. With
    held-out MI at every second validation, the report plots it over training."""
    from searec.separation import heldout

    settings = heldout.HeldoutSettings  # few critic steps while training: plumbing only
    monkeypatch.setattr(heldout, "HeldoutSettings",
                        lambda **kw: settings(**{**kw, "steps": 10}))
    run = tmp_path / "hsic"
    assert main(["train", "--out", str(run), "data.synthetic.n_users=120",
                 "data.synthetic.n_items=80", "train.epochs=2", "train.progress=false",
                 "model.separation.distancing=hsic", "train.thorough_diagnostics_every=2"]) == 0
    rows = read_csv_rows(run / "history.csv")
    assert all(-1.0 <= float(r["loss_distance"]) <= 1.0 for r in rows)
    assert [r["diag_heldout_nwj_generic_unique_audio"] != "" for r in rows] == [False, True]
    assert main(["diagnose", str(run), "--folds", "2", "--steps", "25"]) == 0
    diag = json.loads((run / "diagnostics.json").read_text())
    assert diag["panels"] == ["alignment"]
    assert math.isfinite(diag["heldout_mi"]["generic_unique_text"]["infonce"]["mean"])
    assert main(["report", str(run)]) == 0
    assert "![held-out MI](figures/heldout_mi.png)" in (run / "report.md").read_text()
    assert (run / "figures" / "heldout_mi.png").stat().st_size > 5000


def test_probe_r2_hand_checked():
    from searec.separation.diagnostics import probe_r2

    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 5))
    assert probe_r2(x, x @ rng.standard_normal((5, 3))) > 0.99  # a linear function of x
    assert abs(probe_r2(x, rng.standard_normal((600, 3)))) < 0.05  # independent of x
    noisy = x[:, :2] + rng.standard_normal((600, 2))  # half its variance is x's
    assert probe_r2(x, noisy) == pytest.approx(0.5, abs=0.06)
