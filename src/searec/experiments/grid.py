"""`searec experiment FILE.yaml`: a declared grid of runs, resumable, with one summary.

The file declares datasets, model variants, seeds, a base config and a baseline::

    base:                        # config shared by every run (same keys as --config)
      data: {cold_users: drop}
      train: {progress: false}
    datasets:                    # name -> MMRec folder (relative to this file), or null
      tiktok: ../shared/data/tiktok     # for the embedded synthetic dataset
    variants:                    # name -> config overrides of that variant (a variant that
                                 # names another model does not inherit base's model keys)
      lightgcn: {model: {name: lightgcn}}
      sea: {model: {name: sea, separation: {distancing: {q_steps: 5}, mi_items: batch}}}
    seeds: [1, 2, 3]
    baseline: lightgcn           # every variant is compared with it, seed by seed
    compare_with:                # optional: variant -> the variant it is compared with
      lightgcn_sep: lightgcn     # instead of the baseline (e.g. X+separation vs X)
    metrics: [recall@20, ndcg@20]   # optional; default: every test metric
    diagnose: {folds: 3, steps: 400, batch: 256}   # optional: held-out MI of every run
                                                   # with separation (searec diagnose)

Runs go to OUT/runs/<dataset>/<variant>/seed<N>/ (ordinary run folders). A run with a
metrics.json is skipped; one with a checkpoint is resumed; the rest are trained, ``jobs``
at a time (separate processes, each logging to ``seed<N>.log`` beside its folder). Several
``searec experiment`` processes may work on one OUT at once (more cores, or machines that
share the folder): a run is claimed by a lock on ``.seed<N>.lock`` beside its folder
while it trains, and the others pass over it. Then
OUT/results.csv (one row per run, with the means of its term diagnostics up to the best
epoch and its held-out MI) and OUT/summary.csv / summary.md (mean, std over seeds, paired
tests against the baseline, for the metrics and for those diagnostics) are written.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from searec.config import Config, build_config, deep_merge, read_yaml
from searec.errors import ConfigError
from searec.evaluation.stats import mean_std, paired_test
from searec.io import file_lock, read_csv_rows, rows_to_csv, write_text
from searec.runs import resume, train
from searec.schema import StrictModel, validate
from searec.separation.diagnostics import heldout_means
from searec.separation.heldout import HeldoutSettings
from searec.training.checkpoint import BEST, LAST


class DiagnoseSpec(StrictModel):
    """Held-out MI at each run's best checkpoint (``searec diagnose`` settings)."""

    folds: int = Field(3, ge=2)
    steps: int = Field(400, ge=1)
    batch: int = Field(256, ge=2)


class ExperimentSpec(StrictModel):
    base: dict[str, Any] = Field(default_factory=dict)
    datasets: dict[str, str | None] = Field(default_factory=lambda: {"synthetic": None})
    variants: dict[str, dict[str, Any]]
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3])
    baseline: str | None = None
    compare_with: dict[str, str] = Field(default_factory=dict)
    metrics: list[str] | None = None
    diagnose: DiagnoseSpec | None = None

    def reference(self, variant: str) -> str | None:
        """The variant `variant` is compared with (None: itself the baseline, or none)."""
        ref = self.compare_with.get(variant, self.baseline)
        return None if ref == variant else ref


def load_spec(path: str | Path, check_folders: bool = True) -> tuple[ExperimentSpec, Path]:
    """The experiment file, validated, and the folder its dataset paths are relative to;
    ``check_folders``: also that every dataset folder exists."""
    path = Path(path)
    tree = read_yaml(path)
    spec = validate(ExperimentSpec, tree, str(path))
    if not spec.variants:
        raise ConfigError(f"{path}: 'variants' is empty; declare at least one")
    if spec.baseline is not None and spec.baseline not in spec.variants:
        raise ConfigError(f"{path}: baseline {spec.baseline!r} is not one of the variants "
                          f"({', '.join(spec.variants)})")
    for variant, ref in spec.compare_with.items():
        for name in (variant, ref):
            if name not in spec.variants:
                raise ConfigError(f"{path}: compare_with names {name!r}, which is not one of "
                                  f"the variants ({', '.join(spec.variants)})")
    if len(set(spec.seeds)) != len(spec.seeds) or not spec.seeds:
        raise ConfigError(f"{path}: 'seeds' must be a non-empty list of distinct integers")
    root = path.parent.resolve()
    for name, folder in spec.datasets.items():
        # here, before any run starts, not in the first run to read it
        if check_folders and folder is not None and not (root / folder).is_dir():
            raise ConfigError(f"{path}: datasets.{name}: {(root / folder).resolve()} is not "
                              "a folder (dataset paths are relative to the experiment file)")
    return spec, root


def _switches_model(base: dict[str, Any], overrides: dict[str, Any]) -> bool:
    name = (overrides.get("model") or {}).get("name")
    return name is not None and name != (base.get("model") or {}).get("name", "sea")


def plan(spec: ExperimentSpec, root: Path, out: Path) -> list[dict[str, Any]]:
    """Every run of the grid: dataset, variant, seed, validated config, run folder."""
    runs = []
    for ds_name, ds_path in spec.datasets.items():
        data = {"path": None if ds_path is None else str((root / ds_path).resolve())}
        for variant, overrides in spec.variants.items():
            for seed in spec.seeds:
                tree = deep_merge(spec.base, {"data": data})
                if _switches_model(spec.base, overrides):
                    # another model's parameters would be unknown keys: start its section over
                    tree.pop("model", None)
                tree = deep_merge(tree, overrides)
                tree = deep_merge(tree, {"train": {"seed": seed}})
                cfg = build_config(tree, f"experiment variant {variant!r}")
                runs.append({"dataset": ds_name, "variant": variant, "seed": seed,
                             "config": cfg,
                             "dir": out / "runs" / ds_name / variant / f"seed{seed}"})
    return runs


def _needs_diagnosis(config: Config, run_dir: Path, settings: HeldoutSettings | None) -> bool:
    """Whether a run of ``config`` (the grid's validated config of that run) still needs
    its held-out MI measured with ``settings``."""
    if settings is None or config.model_params.get("separation") is None:
        return False
    path = run_dir / "diagnostics.json"
    return not path.is_file() or \
        json.loads(path.read_text()).get("heldout_settings") != asdict(settings)


def run_state(run_dir: Path) -> str:
    """"done" (metrics.json written), "resume" (a checkpoint to continue) or "train"."""
    if (run_dir / "metrics.json").is_file():
        return "done"
    if (run_dir / LAST).is_file() or (run_dir / BEST).is_file():
        return "resume"
    return "train"


@contextmanager
def claim_run(run_dir: Path) -> Iterator[bool]:
    """Hold the run's lock file (beside its folder, which training may replace) for the
    block; yields False when another process holds it (:func:`searec.io.file_lock`)."""
    with file_lock(run_dir.parent / f".{run_dir.name}.lock") as held:
        yield held


def _execute(config: Config, run_dir: Path, settings: HeldoutSettings | None,
             log_file: Path | None) -> bool:
    """Train, resume or leave (finished) one run, then measure its held-out MI if asked;
    False when another process holds the run. In a worker process it logs to
    ``log_file``."""
    handle = open(log_file, "a") if log_file is not None else None  # noqa: SIM115
    log: Callable[[str], None] = print if handle is None else \
        (lambda msg: print(msg, file=handle, flush=True))
    try:
        with claim_run(run_dir) as claimed:
            if not claimed:
                return False
            mode = run_state(run_dir)  # anew: another process may have got further
            if mode == "resume":
                resume(run_dir, log=log)
            elif mode == "train":
                train(config, run_dir, overwrite=True, log=log)
            if _needs_diagnosis(config, run_dir, settings):
                from searec.experiments.diagnose import diagnose_run

                if config.train.threads:  # as many threads as the run trained with
                    torch.set_num_threads(config.train.threads)
                diagnose_run(run_dir, heldout=settings)
                log(f"held-out MI of {run_dir} in diagnostics.json")
        return True
    finally:
        if handle is not None:
            handle.close()


def run_experiment(
    spec_path: str | Path, out: str | Path, log: Callable[[str], None] = print,
    jobs: int = 1, summary_only: bool = False,
) -> list[dict[str, Any]]:
    """Run (or finish) the grid, ``jobs`` runs at a time, and write its tables.

    ``summary_only``: train and diagnose nothing; the tables cover the finished runs
    (paired tests over the seeds a variant and the baseline both have)."""
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    spec, root = load_spec(spec_path)
    out = Path(out)
    runs = plan(spec, root, out)  # validates every config before any training starts
    if summary_only:
        finished = [r for r in runs if (r["dir"] / "metrics.json").is_file()]
        log(f"{len(finished)} of {len(runs)} runs finished; summarising those")
        rows = collect(finished)
        write_tables(rows, spec, out)
        return rows
    settings = HeldoutSettings(**spec.diagnose.model_dump()) if spec.diagnose else None
    tasks = []
    for i, r in enumerate(runs, 1):
        tag = f"[{i}/{len(runs)}] {r['dataset']} / {r['variant']} / seed {r['seed']}"
        run_dir: Path = r["dir"]
        mode = run_state(run_dir)
        log(f"{tag}: " + {"done": "done, skipped", "resume": "resuming",
                          "train": "training"}[mode])
        if mode != "done" or _needs_diagnosis(r["config"], run_dir, settings):
            tasks.append((tag, r["config"], run_dir))
    if jobs == 1:
        for tag, config, run_dir in tasks:
            if not _execute(config, run_dir, settings, None):
                log(f"{tag}: another process is running it, passed over")
    elif tasks:
        # spawned, not forked: torch's thread pools do not survive a fork
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {}
            for tag, config, run_dir in tasks:
                log_file = run_dir.parent / f"{run_dir.name}.log"
                run_dir.parent.mkdir(parents=True, exist_ok=True)
                futures[pool.submit(_execute, config, run_dir, settings,
                                    log_file)] = (tag, log_file)
            for future, (tag, log_file) in futures.items():
                # a failed run stops the grid, with its error
                log(f"{tag}: finished (log: {log_file})" if future.result() else
                    f"{tag}: another process is running it, passed over")
    finished = [r for r in runs if (r["dir"] / "metrics.json").is_file()]
    if len(finished) < len(runs):
        log(f"{len(runs) - len(finished)} runs are not finished (other processes held "
            f"them); the tables cover the {len(finished)} finished ones (the last process "
            "to end writes them complete)")
    rows = collect(finished)
    write_tables(rows, spec, out)
    return rows


def separation_summary(run_dir: Path, best_epoch: int) -> dict[str, float]:
    """A run's term diagnostics (history.csv's ``term_*`` columns, averaged over epochs
    1..best_epoch) and its held-out MI means (``heldout_<estimator>_<pair>``)."""
    out: dict[str, float] = {}
    history = run_dir / "history.csv"
    rows = [r for r in read_csv_rows(history) if int(r["epoch"]) <= best_epoch] \
        if history.is_file() else []
    for col in (c for c in (rows[0] if rows else {}) if c.startswith("term_")):
        values = [float(r[col]) for r in rows if r.get(col) not in (None, "")]
        if values:
            out[col] = sum(values) / len(values)
    diagnostics = run_dir / "diagnostics.json"
    if diagnostics.is_file():
        out.update(heldout_means(json.loads(diagnostics.read_text()).get("heldout_mi", {})))
    return out


# metrics.json's cold-start sections (searec.evaluation.warm_and_cold_metrics)
COLD_PARTS = ("warm", "cold", "cold_catalogue")


def collect(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        metrics = json.loads((r["dir"] / "metrics.json").read_text())
        row = {"dataset": r["dataset"], "variant": r["variant"], "seed": r["seed"],
               "best_epoch": metrics["best_epoch"], "train_seconds": metrics["train_seconds"]}
        row.update({f"test_{k}": v for k, v in metrics["test"].items()})
        for part in COLD_PARTS:  # the cold-start protocol's test metrics, if any
            row.update({f"test_{part}_{k}": v
                        for k, v in (metrics.get(f"test_{part}") or {}).items()})
        row.update({f"valid_{k}": v for k, v in metrics["valid"].items()})
        row.update({f"valid_cold_{k}": v for k, v in (metrics.get("valid_cold") or {}).items()})
        # the same run without its cold-item path (searec.training.cold_start): paired
        plain = metrics.get("without_cold_path") or {}
        for part in ("", *(f"_{p}" for p in COLD_PARTS)):
            row.update({f"nopath_test{part}_{k}": v
                        for k, v in (plain.get(f"test{part}") or {}).items()})
        row.update({f"nopath_valid_{k}": v for k, v in (plain.get("valid") or {}).items()})
        if metrics.get("cold_start"):
            row["cold_start_anchor_scale"] = metrics["cold_start"]["anchor_scale"]
            row["cold_start_spread_scale"] = metrics["cold_start"]["spread_scale"]
        row.update(separation_summary(r["dir"], metrics["best_epoch"]))
        rows.append(row)
    return rows


# the diagnostics a summary also compares across variants (when runs have them)
DIAGNOSTIC_PREFIXES = ("heldout_infonce_", "heldout_nwj_", "term_grad_share_",
                       "term_clamped_")


def summarise(rows: list[dict[str, Any]], spec: ExperimentSpec) -> list[dict[str, Any]]:
    """Per dataset, variant and metric (``test_<metric>``, then each diagnostic column):
    mean and std over seeds, and the paired test against the baseline's same seeds."""
    metrics = spec.metrics or sorted({k[5:] for r in rows for k in r if k.startswith("test_")
                                      and not k.startswith(("test_warm_", "test_cold_"))})
    columns = [f"test_{m}" for m in metrics]
    columns += [f"test_{part}_{m}" for part in COLD_PARTS for m in metrics
                if any(f"test_{part}_{m}" in r for r in rows)]
    columns += sorted({k for r in rows for k in r if k.startswith(DIAGNOSTIC_PREFIXES)})
    out = []
    for ds in spec.datasets:
        by_variant = {v: sorted((r for r in rows if r["dataset"] == ds and r["variant"] == v),
                                key=lambda r: r["seed"]) for v in spec.variants}
        for column in columns:
            name = column[5:] if column.startswith("test_") else column
            for variant, vrows in by_variant.items():
                have = [r for r in vrows if column in r]
                if not have:
                    continue
                values = [r[column] for r in have]
                mean, std = mean_std(values)
                entry: dict[str, Any] = {"dataset": ds, "variant": variant, "metric": name,
                                         "mean": mean, "std": std, "seeds": len(values)}
                ref = spec.reference(variant)
                base = {r["seed"]: r[column] for r in by_variant.get(ref or "", [])
                        if column in r}
                paired = [r for r in have if r["seed"] in base]
                if ref is not None and len(paired) >= 2:
                    test = paired_test([r[column] for r in paired],
                                       [base[r["seed"]] for r in paired])
                    entry["paired_seeds"] = len(paired)
                    entry.update({"baseline": ref, "diff": test["diff"],
                                  "p_ttest": test["p_ttest"], "p_wilcoxon": test["p_wilcoxon"]})
                out.append(entry)
    return out


def _fmt_p(p: float) -> str:
    return "n/a" if p is None or math.isnan(p) else f"{p:.3g}"


def write_tables(rows: list[dict[str, Any]], spec: ExperimentSpec, out: Path) -> None:
    summary = summarise(rows, spec)
    write_text(out / "results.csv", rows_to_csv(rows))
    write_text(out / "summary.csv", rows_to_csv(summary))
    header = "vs baseline" if not spec.compare_with else "vs baseline (or the variant named)"
    lines = [f"| dataset | variant | metric | mean ± std (seeds) | {header} | paired t p |",
             "|---|---|---|---|---|---|"]
    for s in summary:
        vs = f"{s['diff']:+.4f}" if "diff" in s else \
            "baseline" if spec.baseline == s["variant"] else ""
        if "diff" in s and s["baseline"] != spec.baseline:
            vs += f" vs {s['baseline']}"
        if "paired_seeds" in s and s["paired_seeds"] < s["seeds"]:
            vs += f" ({s['paired_seeds']} paired)"
        lines.append(f"| {s['dataset']} | {s['variant']} | {s['metric']} | {s['mean']:.4f} ± "
                     f"{s['std']:.4f} ({s['seeds']}) | {vs} | {_fmt_p(s.get('p_ttest'))} |")
    write_text(out / "summary.md", "\n".join(lines) + "\n")
