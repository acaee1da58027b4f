"""What each loss term does while training: gradient shares, clamped bounds, q's fit, and
the warning that names an inert term."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from searec.cli import main
from searec.config import build_config
from searec.data.load import load_dataset
from searec.graphs import InteractionGraph
from searec.io import read_csv_rows
from searec.optim import fit_auxiliary
from searec.runs import build_model
from searec.separation import VariationalParams, distancing_registry
from searec.training import Trainer, main_parameters
from searec.training.terms import inert_terms

TINY = {"data": {"synthetic": {"n_users": 80, "n_items": 50, "interactions_per_user": 8}},
        "model": {"name": "sea", "embedding_dim": 16,
                  "separation": {"distancing": {"name": "club", "q_steps": 2},
                                 "distance_weight": 0.006}},
        # float32: the direct computation below runs outside the trainer's autocast
        "train": {"progress": False, "batch_size": 128, "epochs": 2, "precision": "float32"}}


def _trainer(tree, tmp_path) -> Trainer:
    cfg = build_config(tree)
    dataset = load_dataset(cfg.data)
    torch.manual_seed(0)
    model = build_model(cfg, dataset)
    return Trainer(model, dataset, InteractionGraph.from_train(dataset.train), cfg.train,
                   cfg.eval, tmp_path, torch.device("cpu"), log=lambda _m: None)


def _batch(trainer: Trainer):
    users, items = trainer.dataset.train_pairs()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(users), 64, replace=False)
    return users[pick], items[pick], rng.integers(0, trainer.dataset.n_items, 64)


def test_gradient_shares_equal_the_direct_computation(tmp_path):
    measured = _trainer(TINY, tmp_path / "a")
    torch.manual_seed(5)
    measured.train_step(_batch(measured), 1, measure_terms=True)
    shares = {k: v for k, v in measured.last_term_stats.items() if k.startswith("grad_share_")}
    assert set(shares) == {"grad_share_align", "grad_share_distance"}

    direct = _trainer(TINY, tmp_path / "b")  # same seed, same start
    model = direct.model
    users, pos, neg = (torch.from_numpy(a) for a in _batch(direct))
    torch.manual_seed(5)
    result = model.loss(direct.graph, users, pos, neg)
    terms = result.terms
    params = main_parameters(model, model.auxiliary_objectives())
    rest = result.loss - sum(terms.values())

    def grads(t):
        return torch.autograd.grad(t, params, retain_graph=True, allow_unused=True)

    g_rest = grads(rest)
    for name, term in terms.items():
        own = other = 0.0
        for gt, gr in zip(grads(term), g_rest, strict=True):
            if gt is not None and gr is not None and bool(gr.any()):
                own += float(gt.double().pow(2).sum())
                other += float(gr.double().pow(2).sum())
        want = math.sqrt(own) / (math.sqrt(own) + math.sqrt(other))
        assert shares[f"grad_share_{name}"] == pytest.approx(want, rel=1e-4, abs=1e-7), name
    assert 0 < shares["grad_share_align"] < 1


def test_measuring_does_not_change_training(tmp_path):
    rows = {}
    for on in (True, False):
        tree = {**TINY, "train": {**TINY["train"], "term_diagnostics": on}}
        trainer = _trainer(tree, tmp_path / str(on))
        rows[on] = trainer.fit().history
    for with_terms, without in zip(rows[True], rows[False], strict=True):
        assert {k for k in with_terms if k.startswith("term_grad_share_")} == {
            "term_grad_share_align", "term_grad_share_distance"}
        assert not any(k.startswith("term_grad_share_") for k in without)
        for key, value in without.items():
            if "seconds" not in key:
                assert with_terms[key] == value, key


def test_heldout_mi_at_every_second_validation_leaves_training_unchanged(tmp_path,
                                                                          monkeypatch):
    from searec.separation import heldout

    settings = heldout.HeldoutSettings  # fewer critic steps: this checks the plumbing
    monkeypatch.setattr(heldout, "HeldoutSettings", lambda **kw: settings(**{**kw,
                                                                            "steps": 10}))
    rows = {}
    for every in (2, 0):
        tree = {**TINY, "train": {**TINY["train"], "epochs": 4,
                                  "thorough_diagnostics_every": every}}
        rows[every] = _trainer(tree, tmp_path / str(every)).fit().history
    column = "diag_heldout_infonce_generic_unique_image"
    assert [column in r for r in rows[2]] == [False, True, False, True]
    assert all(math.isfinite(r[column]) for r in rows[2] if column in r)
    assert {k for r in rows[2] for k in r if k.startswith("diag_heldout_nwj_generic_")} \
        >= {"diag_heldout_nwj_generic_unique_text", "diag_heldout_nwj_generic_image_text"}
    for measured, plain in zip(rows[2], rows[0], strict=True):
        for key, value in plain.items():
            if "seconds" not in key:
                assert measured[key] == value, key


def test_clamp_and_q_fit_facts():
    """An unfitted q on independent parts clamps often and fits worse than a Gaussian that
    ignores x; a q fitted to dependent parts fits better (negative excess)."""
    club = distancing_registry()["club"]
    torch.manual_seed(0)
    x, y = torch.randn(512, 4), torch.randn(512, 4)
    est = club(["m"], VariationalParams(name="club", dim=4, q_hidden=16, q_steps=1, q_lr=2e-2))
    clamped = []
    for _ in range(20):
        est({"m": x}, {"m": y})
        clamped.append(float(est.step_stats()["clamped_m"]))
    assert 0 < np.mean(clamped) <= 1
    dependent = x + 0.3 * torch.randn(512, 4)
    (objective,) = est.objectives()
    opt = torch.optim.Adam(objective.parameters, lr=objective.lr)
    for _ in range(300):
        est({"m": x}, {"m": dependent})
        fit_auxiliary(objective, opt)
    est({"m": x}, {"m": dependent})
    stats = est.step_stats()
    assert float(stats["q_nll_excess_m"]) < -1.0  # q now explains y from x
    assert float(stats["clamped_m"]) == 0.0


def test_an_inert_term_is_named_with_what_to_try(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "data.synthetic.n_users=80",
                 "data.synthetic.n_items=50", "train.epochs=2", "train.progress=false",
                 "model.separation.distancing=club",
                 "model.separation.distance_weight=1e-9"]) == 0
    err = capsys.readouterr().err
    assert "warning: loss term 'distance' was inert" in err
    assert "raise model.separation.distance_weight" in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert "distance" in {t["term"] for t in metrics["inert_terms"]}
    assert main(["report", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "loss_terms.png" in report and "Inert terms" in report
    history = read_csv_rows(run / "history.csv")
    assert {"term_clamped_distance_image", "term_q_nll_excess_image"} <= set(history[0])


def test_inert_rules():
    history = [{"term_grad_share_align": 0.2, "term_grad_share_distance": 0.001,
                "term_clamped_distance_a": 0.95, "term_clamped_distance_b": 0.5}] * 3
    found = {(t["term"], t["kind"]) for t in inert_terms(history)}
    assert found == {("distance", "small_gradient"), ("distance_a", "clamped")}
    assert inert_terms([{"loss": 1.0}]) == []


def test_standardised_inputs_let_q_fit_parts_of_small_variance():
    """Parts with per-dimension variance ~0.01 (what the transforms give on TikTok at
    start): the tanh-bounded q cannot fit them (excess above 0, bound clamped); with
    q_standardize it can (excess below 0, bound above 0)."""
    club = distancing_registry()["club"]
    torch.manual_seed(0)
    x = 0.1 * torch.randn(1024, 4)
    y = x + 0.03 * torch.randn(1024, 4)
    result = {}
    for standardize in (False, True):
        torch.manual_seed(1)
        est = club(["m"], VariationalParams(name="club", dim=4, q_hidden=16, q_steps=1,
                                            q_lr=1e-2, q_standardize=standardize))
        (objective,) = est.objectives()
        opt = torch.optim.Adam(objective.parameters, lr=objective.lr)
        for _ in range(300):
            est({"m": x}, {"m": y})
            fit_auxiliary(objective, opt)
        bound = est({"m": x}, {"m": y})["m"]
        result[standardize] = (float(est.step_stats()["q_nll_excess_m"]), float(bound))
    assert result[False][0] > 0  # q fits worse than a Gaussian ignoring x
    assert result[True][0] < -1.0 and result[True][1] > 0.5
