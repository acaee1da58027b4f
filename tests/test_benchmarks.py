"""The arithmetic behind the time-to-quality headline, on hand-made run folders; one
tiny size of the scale benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.repo_files import load_module


def _load(name: str) -> ModuleType:
    return load_module(f"benchmarks/{name}.py")


ttq = _load("time_to_quality")


def _run(path: Path, rows: list[tuple[float, float, float | None]],
         test_recall: float | None) -> None:
    """A run folder: history.csv with (train s, eval s, valid recall@20) per epoch."""
    path.mkdir(parents=True)
    lines = ["epoch,train_seconds,valid_recall@20,eval_seconds"]
    for epoch, (train_s, eval_s, valid) in enumerate(rows, start=1):
        lines.append(f"{epoch},{train_s},{'' if valid is None else valid},{eval_s}")
    (path / "history.csv").write_text("\n".join(lines) + "\n")
    if test_recall is not None:
        (path / "metrics.json").write_text(json.dumps(
            {"test": {"recall@20": test_recall, "ndcg@20": test_recall / 2}}))


COSTS = {"runs": {"reference": {"median_s": 10.0, "min_s": 8.0, "n": 2, "samples_s": []},
                  "default": {"median_s": 1.0, "min_s": 0.5, "n": 2, "samples_s": []}},
         "rounds": 1, "epochs_per_run": 2}


def test_target_epochs_and_ratios(tmp_path: Path) -> None:
    # reference best 0.30 at epoch 3; default first >= 0.30 at epoch 4 (epoch 2 unevaluated)
    _run(tmp_path / "reference", [(9, 1, 0.1), (9, 1, 0.2), (9, 1, 0.3), (9, 1, 0.25)], 0.40)
    _run(tmp_path / "default", [(1, 0, 0.1), (2, 0, None), (1, 1, 0.29), (1, 1, 0.31)], 0.41)
    r = ttq.analyse(tmp_path, COSTS)
    assert r["target_valid"] == 0.3
    assert r["reference"]["reached_at_epoch"] == 3
    assert r["reference"]["reached_after_s"] == pytest.approx(30.0)
    assert r["default"]["reached_at_epoch"] == 4
    assert r["default"]["reached_after_s"] == pytest.approx(7.0)
    assert r["time_ratio_as_run"] == pytest.approx(7.0 / 30.0)
    assert r["default"]["reached_after_s_side_by_side"] == pytest.approx(4.0)
    assert r["time_ratio"] == pytest.approx(4.0 / 30.0)
    assert r["time_ratio_fastest_epochs"] == pytest.approx(4 * 0.5 / (3 * 8.0))
    summary = ttq.summarise({1: r})
    assert summary == {"seeds": [1], "worst_time_ratio": pytest.approx(4.0 / 30.0),
                       "default_test_at_least_reference": True}
    text = ttq.markdown({"per_seed": {1: r}, "summary": summary, "epoch_cost": COSTS},
                        {"machine": "m", "torch": "t", "threads": 1})
    assert "| 1 | default | 4 | 0.3100 | 0.3000 | 4 |" in text


def test_a_default_that_never_reaches_the_target_has_no_ratio(tmp_path: Path) -> None:
    _run(tmp_path / "reference", [(9, 1, 0.3)], None)
    _run(tmp_path / "default", [(1, 0, 0.2)], 0.5)
    r = ttq.analyse(tmp_path, COSTS)
    assert r["default"]["reached_at_epoch"] is None
    assert r["time_ratio"] is None and r["time_ratio_as_run"] is None
    summary = ttq.summarise({7: r})
    assert summary["worst_time_ratio"] is None
    assert summary["default_test_at_least_reference"] is False  # reference has no test yet
    text = ttq.markdown({"per_seed": {7: r}, "summary": summary, "epoch_cost": COSTS},
                        {"machine": "m", "torch": "t", "threads": 1})
    assert "the default never reached the target (its best 0.2000 < 0.3000)" in text
    assert "Worst side-by-side ratio over seeds [7]: none" in text


def test_a_fixed_target_times_the_default_runs_alone(tmp_path: Path) -> None:
    # seed 1 first reaches 0.06 at epoch 3 (epoch 2 unevaluated); seed 2 never does
    _run(tmp_path / "seed-1" / "default", [(4, 1, 0.03), (4, 0, None), (4, 1, 0.061)], None)
    _run(tmp_path / "seed-2" / "default", [(4, 1, 0.03), (4, 1, 0.05)], None)
    one = ttq.analyse_fixed(tmp_path / "seed-1", 0.06, COSTS)["default"]
    assert one["reached_at_epoch"] == 3 and one["reached_after_s"] == pytest.approx(14.0)
    assert one["reached_after_s_side_by_side"] == pytest.approx(3.0)  # 3 x median 1.0
    assert one["reached_after_s_fastest_epochs"] == pytest.approx(1.5)
    meta = {"machine": "m", "torch": "t", "threads": 1}
    per_seed = {1: ttq.analyse_fixed(tmp_path / "seed-1", 0.06, COSTS)}
    text = ttq.markdown_fixed(per_seed, COSTS, meta, budget_s=2.0)
    assert "| 1 | 3 | 0.0610 (3) | 14.0 | 3.0 | 1.5 |" in text
    assert "Worst side-by-side time over seeds [1]: 3.0 s; budget 2 s: not met." in text
    per_seed[2] = ttq.analyse_fixed(tmp_path / "seed-2", 0.06, COSTS)
    assert per_seed[2]["default"]["reached_at_epoch"] is None
    text = ttq.markdown_fixed(per_seed, COSTS, meta, budget_s=20.0)
    assert "| 2 | - | 0.0500 (2) | not reached | not reached | not reached |" in text
    assert "none (a seed did not reach the target" in text and "not met" in text


def _tiny_scale_args(**settings: object) -> argparse.Namespace:
    """scale.py's child arguments for a 2,000-interaction run, with ``settings`` changed."""
    defaults = dict(one=2000, items=300, per_user=10, model="sea", steps=2, eval_batch=64,
                    threads=None, knn_cache=None, knn_method="exact", cpu_memory="release",
                    embedding_dim=8, recompute=False, precision="auto", epoch_only=False,
                    device="cpu")
    return argparse.Namespace(**{**defaults, **settings})


@pytest.mark.parametrize("recompute", [False, True])
def test_scale_runs_one_size_with_the_settings_asked_for(recompute: bool) -> None:
    scale = _load("scale")
    out = scale.run_one(_tiny_scale_args(recompute=recompute))
    assert out["embedding_dim"] == 8 and out["users"] == 1000 and out["items"] == 300
    assert out["recompute"] is recompute
    assert out["steps"] == 2 and out["epoch_s"] > 0 and 0 <= out["test_recall@20"] <= 1
    assert out["peak_rss_gb"] >= out["rss_after_knn_gb"] > 0
    assert out["bare_eval_s"] > 0 and out["precision"] in ("float32", "bfloat16")
    text = scale.markdown([out], {"model": "sea", "per_user": 10, "steps": 2,
                                  "eval_batch": 64, "cpu_memory": "release", "machine": "m",
                                  "torch": "t", "threads": 1})
    assert f"| {out['eval_s'] / out['bare_eval_s']:.2f} |" in text
    assert f"| {out['rss_after_epoch_gb']:.2f} | {out['peak_rss_gb']:.2f} |" in text


def test_scale_epoch_only_trains_and_stops() -> None:
    scale = _load("scale")
    out = scale.run_one(_tiny_scale_args(epoch_only=True))
    assert out["epoch_s"] > 0 and not {"eval_s", "bare_eval_s", "test_recall@20"} & set(out)
    text = scale.markdown([out], {"model": "sea", "per_user": 10, "steps": 2,
                                  "eval_batch": 64, "cpu_memory": "release", "machine": "m",
                                  "torch": "t", "threads": 1})
    assert f"| {out['epoch_s']:.1f} | - | - | - |" in text


def test_step_memory_runs_steps_under_each_setting() -> None:
    import argparse

    bench = _load("step_memory")
    args = argparse.Namespace(interactions=2000, items=300, embedding_dim=8, train_steps=2,
                              threads=None, knn_method="exact", knn_cache=None,
                              precision="float32")
    rows = [bench.run_one(args, recompute) for recompute in (False, True)]
    for row, recompute in zip(rows, (False, True), strict=True):
        assert row["recompute"] is recompute and row["embedding_dim"] == 8
        assert isinstance(row["huge_pages"], bool)
        assert len(row["step_s"]) == 2 and row["peak_rss_gib"] >= row["peak_rss_before_steps_gib"]
    # the same computation either way
    assert rows[0]["losses"] == pytest.approx(rows[1]["losses"], rel=1e-5)
    reuse = bench.run_one(args, False, "reuse")  # as train.cpu_memory=reuse (the default)
    assert reuse["cpu_memory"] == "reuse" and not reuse["recompute"]
    assert reuse["losses"] == pytest.approx(rows[0]["losses"], rel=1e-5)
    # a setting's precision wins over --precision; each row says which it ran in
    half = bench.run_one(args, False, precision="bfloat16")
    assert half["precision"] == "bfloat16" and rows[0]["precision"] == "float32"
    assert half["losses"] == pytest.approx(rows[0]["losses"], rel=3e-2)
    table = bench.markdown([*rows, reuse], {"embedding_dim": 8, "train_steps": 2,
                                            "machine": "m", "torch": "t", "threads": 1})
    assert "| false | release |" in table and "| true | release |" in table
    assert "| false | reuse |" in table


def test_mmrec_parity_report_arithmetic(tmp_path):
    """The parity table from hand-made per-seed results: means, spreads, the range check
    and the epoch-time ratio of the seeds both sides have."""
    import argparse

    parity = _load("mmrec_parity")
    out = tmp_path / "parity"
    theirs = {1: 0.090, 2: 0.094, 3: 0.098}
    ours = {1: 0.093, 2: 0.095, 3: 0.097}
    for side, values, seconds in (("mmrec", theirs, 4.0), ("ours", ours, 1.0)):
        for seed, recall in values.items():
            path = out / side / "bm3" / f"seed{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({
                "seed": seed, "test": {"recall@20": recall, "ndcg@20": recall / 2},
                "valid": {"recall@20": recall, "ndcg@20": recall / 2},
                "epochs_run": 10, "epoch_seconds": [seconds * seed, seconds, seconds]}))
    parity.report(argparse.Namespace(out=out, data="tiktok", results=tmp_path / "res"))
    row = json.loads((tmp_path / "res" / "mmrec_parity.json").read_text())["models"][0]
    recall = row["recall@20"]
    assert recall["mmrec_mean"] == pytest.approx(0.094) and \
        recall["mmrec_std"] == pytest.approx(0.004)
    assert recall["searec_mean"] == pytest.approx(0.095) and recall["within_mmrec_range"]
    assert row["mmrec_over_searec_epoch_time"] == pytest.approx([4.0, 4.0, 4.0])
    assert "| bm3 | 1,2,3 | test recall@20 | 0.0940 ± 0.0040 | 0.0950 ± 0.0020 |" in \
        (tmp_path / "res" / "mmrec_parity.md").read_text()
    assert "Side by side with nothing else" not in (tmp_path / "res" / "mmrec_parity.md"
                                                    ).read_text()
    # `speed` runs: the first epoch is left out, min / median of the rest, median ratio
    for side, seconds in (("mmrec", [9.0, 3.0, 5.0, 4.0]), ("ours", [7.0, 2.0, 1.0, 4.0])):
        path = out / "speed" / side / "lgmrec" / "seed1.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"seed": 1, "epoch_seconds": seconds}))
    parity.report(argparse.Namespace(out=out, data="tiktok", results=tmp_path / "res"))
    speed = json.loads((tmp_path / "res" / "mmrec_parity.json").read_text())["speed_alone"]
    assert speed == [{"model": "lgmrec", "seed": 1,
                      "mmrec": {"epochs": 3, "min": 3.0, "median": 4.0},
                      "searec": {"epochs": 3, "min": 1.0, "median": 2.0},
                      "mmrec_over_searec": 2.0}]
    assert "| lgmrec | 1 | 3 | 3.00 / 4.00 | 1.00 / 2.00 | 2.00 |" in \
        (tmp_path / "res" / "mmrec_parity.md").read_text()
    # a run cut at --epochs among the parity results is refused, not averaged in
    cut = out / "ours" / "bm3" / "seed1.json"
    cut.write_text(json.dumps({**json.loads(cut.read_text()), "epoch_limit": 6}))
    with pytest.raises(SystemExit, match="was cut at --epochs"):
        parity.report(argparse.Namespace(out=out, data="tiktok", results=tmp_path / "res"))


def test_mmrec_parity_noisy_inference_of_lgmrec(tmp_path):
    """``noisy`` scores a searec LGMRec run with MMRec's inference (Gumbel noise kept):
    the clean score is the run's own test metric, each draw differs, and the report
    carries their mean."""
    import argparse

    import searec
    from searec.config import load_config

    parity = _load("mmrec_parity")
    out = tmp_path / "parity"
    run = out / "ours" / "lgmrec" / "seed1"
    searec.train(load_config(None, ["model.name=lgmrec", "train.epochs=2",
                                    "train.progress=false", "data.synthetic.n_users=200",
                                    "data.synthetic.n_items=150"]), run, log=lambda _m: None)
    noisy_json = out / "ours" / "lgmrec" / "noisy-seed1.json"
    parity.noisy_inference(run, 3, noisy_json)
    result = json.loads(noisy_json.read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert result["test"]["recall@20"] == pytest.approx(metrics["test"]["recall@20"])
    draws = result["test_noisy"]["ndcg@20"]
    assert len(draws) == 3 and len(set(draws)) == 3
    for side in ("mmrec", "ours"):
        (out / side / "lgmrec").mkdir(parents=True, exist_ok=True)
        (out / side / "lgmrec" / "seed1.json").write_text(json.dumps({
            "seed": 1, "test": metrics["test"], "valid": metrics["valid"],
            "epochs_run": 2, "epoch_seconds": [1.0, 1.0]}))
    parity.report(argparse.Namespace(out=out, data="synthetic", results=tmp_path / "res"))
    row = json.loads((tmp_path / "res" / "mmrec_parity.json").read_text())["models"][0]
    assert row["searec_noisy_inference"]["seeds"] == [1]
    assert row["searec_noisy_inference"]["ndcg@20"][0] == pytest.approx(sum(draws) / 3)
    assert "scored as MMRec scores them" in (tmp_path / "res" / "mmrec_parity.md").read_text()


def test_sea_step_times_every_part_on_a_small_dataset(tmp_path: Path) -> None:
    from searec.data import make_synthetic
    from searec.data.mmrec import save_mmrec

    data = save_mmrec(make_synthetic(n_users=120, n_items=80, seed=0), tmp_path / "data")
    bench = _load("sea_step")
    trainer = bench.trainer_for("sea", str(data), 1, str(tmp_path / "run"))
    trainer.model.train()
    parts = bench.sea_parts(trainer, bench.first_batch(trainer), repeats=2)
    assert "whole trainer step" in parts and "separation terms" in parts
    assert all(0 < t["min_ms"] <= t["median_ms"] for t in parts.values())


def test_gpu_smoke_checks_the_propagation_and_trains_models_on_the_device_it_is_given():
    """gpu_smoke.py, run on the CPU: the propagation check passes there, and a model
    trains and is recorded with its device (no GPU figures)."""
    import torch

    smoke = _load("gpu_smoke")
    rows = smoke.operator_check(torch.device("cpu"))
    assert len(rows) == 8 and all(r["ok"] and r["device"] == "cpu" for r in rows)
    for r in rows:  # float32 to rounding; a bfloat16 gradient to bfloat16's precision
        assert r["rel_err"] < 1e-5
        assert r["rel_grad_err"] < (1e-5 if r["input"] == "float32" else 1e-2)
    args = argparse.Namespace(models="lightgcn", epochs=1, data="")
    (row,) = smoke.train_each_model(args, torch.device("cpu"))
    assert row["ok"] and row["device"] == "cpu" and row["peak_gpu_gb"] is None
    assert 0 <= row["test_recall_at_20"] <= 1


def test_grid_time_to_target_hand_computed(tmp_path: Path) -> None:
    """Per seed, the target is the reference's best validation value; seconds sum train +
    validation up to the first epoch that reaches it; a run that never does says so."""
    bench = _load("grid_time_to_target")
    runs = tmp_path / "grid" / "runs" / "d"
    _run(runs / "ref" / "seed1", [(1.0, 0.5, 0.05), (1.0, 0.5, 0.08), (1.0, 0.5, 0.07)], 0.1)
    _run(runs / "ref" / "seed2", [(1.0, 0.5, 0.06)], 0.1)
    _run(runs / "fast" / "seed1", [(2.0, 0.5, 0.07), (2.0, 0.5, 0.08)], 0.1)
    _run(runs / "fast" / "seed2", [(2.0, 0.5, 0.05), (4.0, 0.5, 0.055)], 0.1)
    _run(runs / "fast" / "seed3", [(2.0, 0.5, 0.09)], None)  # unfinished: left out
    result = bench.analyse(tmp_path / "grid", "d", "ref", {"fast": 2.5})
    assert result["targets"] == {1: 0.08, 2: 0.06}
    fast = {r["seed"]: r for r in result["variants"]["fast"]}
    assert set(fast) == {1, 2}
    assert (fast[1]["epoch"], fast[1]["seconds"]) == (2, 5.0)
    assert fast[1]["side_by_side_seconds"] == 5.0  # 2 epochs x 2.5 s
    assert (fast[2]["epoch"], fast[2]["seconds"]) == (None, None)
    assert fast[2]["side_by_side_seconds"] is None
    assert fast[2]["best"] == 0.055 and fast[2]["epoch_s_median"] == 3.0
    ref = {r["seed"]: r for r in result["variants"]["ref"]}
    assert (ref[1]["epoch"], ref[1]["seconds"]) == (2, 3.0)
    assert ref[1]["side_by_side_seconds"] is None  # no cost given for it
