"""Held-out MI from fresh critics: Gaussians with known MI, the synthetic generator's
planted factors, and separation parts of a trained model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from searec.data.synthetic import SyntheticConfig, make_synthetic, planted_factors
from searec.separation.heldout import HeldoutSettings, heldout_mi

FAST = HeldoutSettings(folds=2, steps=250, batch=256)


def gaussians(n: int, rho: float, d: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, rho * x + math.sqrt(1 - rho**2) * torch.randn(n, d, generator=g)


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_gaussians_with_known_mi(rho):
    true = -math.log(1 - rho**2)  # d = 2
    state = torch.get_rng_state()
    est = heldout_mi(*gaussians(2000, rho), FAST)
    assert torch.equal(torch.get_rng_state(), state)  # the run's random stream is untouched
    for name in ("infonce", "nwj"):  # lower bounds: below the MI, and close to it
        assert est[name]["mean"] <= true + 0.08, (name, est[name])
        assert est[name]["mean"] >= 0.8 * true - 0.08, (name, est[name])
        assert len(est[name]["folds"]) == 2
    # CLUB bounds from above; for this Gaussian its value is d rho^2 / (1 - rho^2)
    assert est["club"]["mean"] >= true - 0.08
    assert est["club"]["mean"] == pytest.approx(2 * rho**2 / (1 - rho**2), abs=0.1, rel=0.1)


def test_planted_factors_of_the_synthetic_generator():
    """Generic and unique factors are independent draws (MI 0); two modalities' features
    share the generic factors (MI clearly above 0); the planted draws are the generator's."""
    cfg = SyntheticConfig(n_users=100, n_items=1600, seed=4)
    planted = planted_factors(cfg)
    ds = make_synthetic(cfg)
    assert planted["generic"].shape == (1600, cfg.generic_dim)
    assert set(planted) == {"generic", *(f"unique_{m}" for m in cfg.modalities)}
    est = heldout_mi(planted["generic"], planted["unique_image"], FAST, ("infonce", "nwj"))
    assert abs(est["infonce"]["mean"]) < 0.1 and abs(est["nwj"]["mean"]) < 0.1
    shared = heldout_mi(ds.modalities["image"], ds.modalities["text"], FAST, ("infonce",))
    assert shared["infonce"]["mean"] > 0.5
    # the features carry the planted generic factors: a linear map recovers them
    feats = ds.modalities["image"]
    coef, *_ = np.linalg.lstsq(feats, planted["generic"], rcond=None)
    resid = planted["generic"] - feats @ coef
    assert 1 - resid.var() / planted["generic"].var() > 0.5


def test_bad_input():
    with pytest.raises(ValueError, match="paired rows"):
        heldout_mi(torch.zeros(10, 2), torch.zeros(9, 2))
    with pytest.raises(ValueError, match="unknown estimators"):
        heldout_mi(torch.randn(20, 2), torch.randn(20, 2), FAST, ("mine",))
