"""searec experiment: grid, resume, summary with paired tests."""

import csv
import math
import subprocess
import sys

import pytest
import yaml

from searec.cli import main
from searec.errors import ConfigError, DataError
from searec.evaluation.stats import mean_std, paired_test
from searec.experiments import run_experiment
from searec.experiments.grid import claim_run

SPEC = """
base:
  data:
    synthetic: {n_users: 120, n_items: 80, interactions_per_user: 10}
  train: {progress: false, epochs: 3, lr: 0.01}
datasets:
  synthetic: null
variants:
  pop: {model: {name: pop}}
  lightgcn: {model: {name: lightgcn}}
seeds: [1, 2, 3]
baseline: pop
metrics: [recall@20, ndcg@20]
"""


def test_mean_std_and_paired_test_hand_computed():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.464, df 2 -> p = 0.0742
    res = paired_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert res["diff"] == 2.0
    assert res["p_ttest"] == pytest.approx(0.0742, abs=1e-4)
    assert math.isnan(res["p_wilcoxon"])  # too few pairs to mean anything
    assert math.isnan(paired_test([1.0, 2.0], [0.0, 1.0])["p_ttest"])  # constant difference
    with pytest.raises(ValueError, match="equal lengths"):
        paired_test([1.0], [1.0, 2.0])


def test_grid_runs_resumes_and_summarises(tmp_path):
    spec = tmp_path / "exp.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "exp"
    logs: list[str] = []
    rows = run_experiment(spec, out, log=logs.append)
    assert len(rows) == 6
    assert sum("training" in m for m in logs) == 6
    with open(out / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    lgcn = next(s for s in summary if s["variant"] == "lightgcn" and s["metric"] == "recall@20")
    assert lgcn["baseline"] == "pop" and float(lgcn["seeds"]) == 3
    pop_vals = [r["test_recall@20"] for r in rows if r["variant"] == "pop"]
    lgcn_vals = [r["test_recall@20"] for r in rows if r["variant"] == "lightgcn"]
    assert float(lgcn["diff"]) == pytest.approx(
        sum(lgcn_vals) / 3 - sum(pop_vals) / 3)
    assert 0.0 <= float(lgcn["p_ttest"]) <= 1.0
    assert "| synthetic | lightgcn | recall@20 |" in (out / "summary.md").read_text()

    # Finished runs are skipped; a missing one is redone.
    (out / "runs" / "synthetic" / "lightgcn" / "seed2" / "metrics.json").unlink()
    logs.clear()
    rows_again = run_experiment(spec, out, log=logs.append)
    assert sum("skipped" in m for m in logs) == 5
    assert sum("resuming" in m for m in logs) == 1
    assert [r["test_recall@20"] for r in rows_again] == [r["test_recall@20"] for r in rows]


POSIX_LOCKS = pytest.mark.skipif(sys.platform == "win32", reason="no POSIX file locks: "
                                 "every claim succeeds")


@POSIX_LOCKS
def test_a_run_another_process_holds_is_passed_over(tmp_path):
    """Two grid processes on one folder: the run one of them holds is left to it; the
    other trains the rest and tables what is finished. Once free, the run is trained."""
    spec = tmp_path / "exp.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "exp"
    held = out / "runs" / "synthetic" / "lightgcn" / "seed2"
    logs: list[str] = []
    with claim_run(held) as claimed:
        assert claimed
        with claim_run(held) as again:  # a second holder is refused while the first lives
            assert not again
        rows = run_experiment(spec, out, log=logs.append)
    assert not (held / "metrics.json").exists()
    assert len(rows) == 5
    assert any("seed 2: another process is running it, passed over" in m for m in logs)
    assert any("1 runs are not finished (other processes held them)" in m for m in logs)
    with open(out / "results.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 5
    logs.clear()
    assert len(run_experiment(spec, out, log=logs.append)) == 6
    assert (held / "metrics.json").is_file()
    assert sum("skipped" in m for m in logs) == 5


@POSIX_LOCKS
def test_a_claim_dies_with_its_process(tmp_path):
    run_dir = tmp_path / "runs" / "x" / "seed1"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pathlib import Path\n"
         "from searec.experiments.grid import claim_run\n"
         f"with claim_run(Path({str(run_dir)!r})) as ok:\n"
         "    print(ok, flush=True)\n"
         "    time.sleep(60)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        with claim_run(run_dir) as claimed:
            assert not claimed
    finally:
        holder.kill()
        holder.wait()
    with claim_run(run_dir) as claimed:  # killed, not released by it: the OS released it
        assert claimed


def test_parallel_grid_with_separation_diagnostics(tmp_path, capsys):
    """--jobs 2 runs the grid in two processes (each logging beside its run folder) with
    the same results as one at a time; ``diagnose`` adds held-out MI and the term
    diagnostics to results.csv and compares them in the summary, paired by seed."""
    spec = tmp_path / "exp.yaml"
    spec.write_text("""
base:
  data:
    synthetic: {n_users: 100, n_items: 60, interactions_per_user: 8}
  train: {progress: false, epochs: 2, threads: 1}
datasets:
  synthetic: null
variants:
  full: {model: {separation: {distancing: club}}}
  hsic: {}
  lightgcn: {model: {name: lightgcn}}
seeds: [1, 2]
baseline: full
metrics: [recall@20]
diagnose: {folds: 2, steps: 25, batch: 16}
""")
    assert main(["experiment", str(spec), "--out", str(tmp_path / "par"), "--jobs", "2"]) == 0
    capsys.readouterr()
    runs = tmp_path / "par" / "runs" / "synthetic"
    assert "held-out MI of" in (runs / "hsic" / "seed2.log").read_text()
    with open(tmp_path / "par" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    full = [r for r in rows if r["variant"] == "full"]
    assert all(float(r["heldout_infonce_generic_unique_image"]) > -1 for r in full)
    assert all(0 <= float(r["term_clamped_distance_image"]) <= 1 for r in full)
    lightgcn = [r for r in rows if r["variant"] == "lightgcn"]
    assert all(r["heldout_infonce_generic_unique_image"] == "" for r in lightgcn)
    summary = (tmp_path / "par" / "summary.md").read_text()
    assert "| synthetic | hsic | heldout_infonce_generic_unique_text |" in summary
    assert "| synthetic | lightgcn | heldout_" not in summary
    # the same grid one run at a time: identical metrics; a finished grid needs nothing
    logs: list[str] = []
    serial = run_experiment(spec, tmp_path / "one", log=logs.append)
    assert [r["test_recall@20"] for r in serial] == \
        [float(r["test_recall@20"]) for r in rows]
    logs.clear()
    run_experiment(spec, tmp_path / "one", log=logs.append)
    assert sum("skipped" in m for m in logs) == 6
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        run_experiment(spec, tmp_path / "one", jobs=0)
    # a grid still running: --summary-only tables the finished runs, trains nothing
    (tmp_path / "one" / "runs" / "synthetic" / "full" / "seed1" / "metrics.json").unlink()
    logs.clear()
    assert main(["experiment", str(spec), "--out", str(tmp_path / "one"),
                 "--summary-only"]) == 0
    assert "5 of 6 runs finished" in capsys.readouterr().err
    assert not (tmp_path / "one" / "runs" / "synthetic" / "full" / "seed1"
                / "metrics.json").exists()
    with open(tmp_path / "one" / "summary.csv") as fh:
        partial = list(csv.DictReader(fh))
    hsic = next(s for s in partial if s["variant"] == "hsic" and s["metric"] == "recall@20")
    assert hsic["seeds"] == "2" and not hsic.get("p_ttest") and not hsic.get("diff")


def test_bad_spec_is_a_clear_error(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("baseline: pop", "baseline: bpr"))
    with pytest.raises(ConfigError, match="baseline 'bpr' is not one of the variants"):
        run_experiment(spec, tmp_path / "o")
    spec.write_text(SPEC.replace("lightgcn: {model: {name: lightgcn}}",
                                 "lightgcn: {model: {name: lightgcn, n_layer: 2}}"))
    assert main(["experiment", str(spec), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'model.n_layer'" in err
    assert not (tmp_path / "o2").exists()


def test_reports_for_experiment_and_run(tmp_path, capsys):
    spec = tmp_path / "exp.yaml"
    spec.write_text(SPEC.replace("seeds: [1, 2, 3]", "seeds: [1, 2]"))
    out = tmp_path / "exp"
    assert main(["experiment", str(spec), "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "| synthetic | lightgcn | recall@20 |" in report
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs == ["synthetic_ndcg_at_20.png", "synthetic_recall_at_20.png"]
    assert all((out / "figures" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    run = out / "runs" / "synthetic" / "lightgcn" / "seed1"
    assert main(["report", str(run)]) == 0
    text = (run / "report.md").read_text()
    assert "| test |" in text and "figures/losses.png" in text
    assert (run / "figures" / "valid_metrics.png").is_file()
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a finished run" in capsys.readouterr().err


def test_variant_naming_another_model_drops_base_model_keys(tmp_path):
    from searec.experiments.grid import load_spec, plan

    spec_file = tmp_path / "e.yaml"
    spec_file.write_text(yaml.safe_dump({
        "base": {"model": {"name": "sea",
                           "separation": {"distancing": {"name": "club", "q_steps": 5}}},
                 "train": {"epochs": 2}},
        "variants": {"sea": {}, "lightgcn": {"model": {"name": "lightgcn", "n_layers": 1}}},
        "seeds": [1]}))
    spec, root = load_spec(spec_file)
    runs = {r["variant"]: r["config"] for r in plan(spec, root, tmp_path / "out")}
    assert runs["sea"].model.model_dump()["separation"]["distancing"]["q_steps"] == 5
    assert runs["lightgcn"].model.name == "lightgcn"
    assert runs["lightgcn"].model.model_dump()["n_layers"] == 1
    assert runs["lightgcn"].train.epochs == 2  # other sections are still inherited


def test_every_shipped_experiment_file_validates():
    """experiments/*.yaml use the current keys: each plans (grid) or checks (search)
    without training anything. Their dataset folders (../shared) are checked only where
    they are present."""
    from pathlib import Path

    from searec.experiments.grid import load_spec, plan
    from searec.experiments.search import check_space, load_search

    repo = Path(__file__).resolve().parents[2]
    files = sorted((repo / "experiments").glob("*.yaml"))
    assert files
    for path in files:
        if "space" in yaml.safe_load(path.read_text()):
            spec, root = load_search(path)
            check_space(spec, root, path)
        else:
            spec, root = load_spec(path, check_folders=(repo.parent / "shared").is_dir())
            assert plan(spec, root, Path("unused"))


def test_compare_with_pairs_a_variant_with_another_than_the_baseline(tmp_path):
    """compare_with: X+separation is tested against X, the rest against the baseline."""
    from searec.experiments.grid import load_spec, summarise, write_tables

    spec_file = tmp_path / "e.yaml"
    spec_file.write_text(SPEC.replace("metrics:", "compare_with: {lightgcn_sep: lightgcn}\n"
                                      "metrics:").replace(
        "lightgcn: {model: {name: lightgcn}}",
        "lightgcn: {model: {name: lightgcn}}\n  lightgcn_sep: {model: {name: lightgcn}}"))
    spec, _ = load_spec(spec_file)
    values = {"pop": [0.1, 0.2, 0.3], "lightgcn": [0.5, 0.6, 0.7],
              "lightgcn_sep": [0.6, 0.8, 1.0]}
    rows = [{"dataset": "synthetic", "variant": v, "seed": s, "test_recall@20": x}
            for v, xs in values.items() for s, x in zip([1, 2, 3], xs, strict=True)]
    summary = {s["variant"]: s for s in summarise(rows, spec) if s["metric"] == "recall@20"}
    assert "baseline" not in summary["pop"]
    assert summary["lightgcn"]["baseline"] == "pop"
    assert summary["lightgcn"]["diff"] == pytest.approx(0.4)
    sep = summary["lightgcn_sep"]
    # differences 0.1, 0.2, 0.3 against lightgcn: the same t as the hand-computed case above
    assert sep["baseline"] == "lightgcn" and sep["diff"] == pytest.approx(0.2)
    assert sep["p_ttest"] == pytest.approx(0.0742, abs=1e-4)
    write_tables(rows, spec, tmp_path)
    assert "| +0.2000 vs lightgcn |" in (tmp_path / "summary.md").read_text()

    spec_file.write_text(SPEC.replace("metrics:", "compare_with: {lightgcn: bpr}\nmetrics:"))
    with pytest.raises(ConfigError, match="compare_with names 'bpr'"):
        load_spec(spec_file)


def test_cold_start_metrics_are_collected_and_summarised(tmp_path):
    """metrics.json's test_warm / test_cold become results.csv columns and summary rows;
    a model without cold metrics (test_cold: null) simply has none."""
    import json

    from searec.experiments.grid import collect, load_spec, summarise

    spec_file = tmp_path / "e.yaml"
    spec_file.write_text(SPEC)
    spec, _ = load_spec(spec_file)
    runs = []
    for variant, cold in (("pop", None), ("lightgcn", {"recall@20": 0.3, "ndcg@20": 0.1})):
        for seed in (1, 2):
            run = tmp_path / variant / str(seed)
            run.mkdir(parents=True)
            base = {"recall@20": 0.5 + seed / 10, "ndcg@20": 0.2}
            run.joinpath("metrics.json").write_text(json.dumps({
                "best_epoch": 1, "train_seconds": 1.0, "valid": base, "test": base,
                "test_warm": base, "test_cold": cold}))
            runs.append({"dataset": "synthetic", "variant": variant, "seed": seed,
                         "dir": run})
    rows = collect(runs)
    assert rows[2]["test_cold_recall@20"] == 0.3 and "test_cold_recall@20" not in rows[0]
    assert rows[0]["test_warm_recall@20"] == pytest.approx(0.6)
    summary = summarise(rows, spec)
    cold = [s for s in summary if s["metric"] == "cold_recall@20"]
    assert [s["variant"] for s in cold] == ["lightgcn"] and cold[0]["seeds"] == 2
    assert any(s["metric"] == "warm_ndcg@20" and s["variant"] == "pop" for s in summary)


def test_grid_refuses_a_missing_dataset_folder_before_any_run(tmp_path):
    spec = tmp_path / "exp.yaml"
    spec.write_text(SPEC.replace("synthetic: null", "nowhere: ../no/such/folder"))
    logs: list[str] = []
    with pytest.raises(ConfigError, match=r"datasets\.nowhere: .*no/such/folder is not a "
                       "folder .*relative to the experiment file"):
        run_experiment(spec, tmp_path / "out", log=logs.append)
    assert logs == []


def test_a_failed_run_in_a_worker_reaches_the_parent_as_its_own_error(tmp_path):
    """--jobs 2: a run that fails in its worker process stops the grid with that run's
    error (here an empty dataset folder), not the pool's 'terminated abruptly'."""
    (tmp_path / "empty").mkdir()
    spec = tmp_path / "exp.yaml"
    spec.write_text(SPEC.replace("synthetic: null", "empty: empty")
                    .replace("seeds: [1, 2, 3]", "seeds: [1]"))
    with pytest.raises(DataError, match="empty"):
        run_experiment(spec, tmp_path / "out", log=lambda _m: None, jobs=2)
