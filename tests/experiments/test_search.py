"""Optuna search: validation-only objective, pruning, resumable SQLite study, best.yaml."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from searec.cli import main
from searec.config import load_config
from searec.errors import ConfigError
from searec.experiments.search import run_search

optuna = pytest.importorskip("optuna")

BASE = {
    "model": {"name": "lightgcn", "embedding_dim": 16, "n_layers": 1},
    "train": {"epochs": 6, "patience": 3, "progress": False, "threads": 1},
    "data": {"synthetic": {"n_users": 200, "n_items": 120, "interactions_per_user": 10}},
}


def write_spec(tmp_path: Path, **extra) -> Path:
    spec = {"base": BASE, "trials": 3, "pruner": {"type": "none"},
            "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 5e-2, "log": True}},
            **extra}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_search_writes_best_config_and_never_touches_test(tmp_path: Path, capsys) -> None:
    path = write_spec(tmp_path, enqueue=[{"train.lr": 0.02}])
    out = tmp_path / "study"
    assert main(["search", str(path), "--out", str(out)]) == 0
    assert "best config:" in capsys.readouterr().out
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("trial,state,valid_recall@20")
    first = next(csv.DictReader(rows))
    assert first["train.lr"] == "0.02" and first["state"] == "COMPLETE"  # enqueued runs first
    for metrics in out.glob("trials/*/metrics.json"):
        assert "test" not in json.loads(metrics.read_text())
    best = load_config(str(out / "best.yaml"))
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    assert best.train.lr == pytest.approx(study.best_trial.params["train.lr"])
    assert best.model.name == "lightgcn" and best.train.epochs == 6
    # best.yaml is an ordinary config: train takes it as it is
    assert main(["train", "--config", str(out / "best.yaml"), "--out",
                 str(tmp_path / "final")]) == 0
    assert "test" in json.loads((tmp_path / "final" / "metrics.json").read_text())


def test_search_resumes_and_retries_interrupted_trial(tmp_path: Path) -> None:
    path = write_spec(tmp_path)
    out = tmp_path / "study"
    run_search(path, out, log=lambda _m: None, trials=2)
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    first = [t.value for t in study.trials]
    # a process killed mid-trial leaves it RUNNING
    orphan = study.ask({"train.lr": optuna.distributions.FloatDistribution(1e-4, 5e-2,
                                                                           log=True)})
    messages: list[str] = []
    best = run_search(path, out, log=messages.append, trials=3)
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert [t.value for t in study.trials[:2]] == first  # finished trials are kept
    assert study.trials[3].params == orphan.params  # the interrupted one ran again
    assert any("interrupted" in m for m in messages)
    assert best["complete"] == 3


def test_poor_trials_are_pruned(tmp_path: Path) -> None:
    path = write_spec(tmp_path, trials=2,
                      pruner={"type": "median", "startup_trials": 1, "warmup_evals": 0},
                      enqueue=[{"train.lr": 0.05}, {"train.lr": 0.0001}])
    run_search(path, tmp_path / "study", log=lambda _m: None)
    study = optuna.load_study(study_name="search",
                              storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]
    assert max(study.trials[1].intermediate_values) < 6  # stopped before the last epoch


@pytest.mark.parametrize(("extra", "match"), [
    ({"space": {"model.n_layer": {"type": "int", "low": 1, "high": 3}}}, "n_layers"),
    ({"space": {"train.lr": {"type": "float", "low": 0.1, "high": 0.01}}}, "'low' < 'high'"),
    ({"space": {"train.lr": {"type": "categorical"}}}, "choices"),
    ({"enqueue": [{"train.batch_size": 64}]}, "not in 'space'"),
    ({"trails": 3}, "trials"),
])
def test_bad_search_specs_fail_before_any_trial(tmp_path: Path, extra, match) -> None:
    path = write_spec(tmp_path, **extra)
    with pytest.raises(ConfigError, match=match):
        run_search(path, tmp_path / "study", log=lambda _m: None)
    assert not (tmp_path / "study" / "study.db").exists()


def test_changed_space_on_resume_is_a_clear_error(tmp_path: Path) -> None:
    path = write_spec(tmp_path, trials=1)
    run_search(path, tmp_path / "study", log=lambda _m: None)
    path = write_spec(tmp_path, trials=2, space={
        "train.lr": {"type": "categorical", "choices": [0.01, 0.001]}})
    with pytest.raises(ConfigError, match="does not match the study"):
        run_search(path, tmp_path / "study", log=lambda _m: None)
