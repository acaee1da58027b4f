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
      sea: {model: {name: sea, separation: {q_steps: 5, mi_items: batch}}}
    seeds: [1, 2, 3]
    baseline: lightgcn           # every variant is compared with it, seed by seed
    metrics: [recall@20, ndcg@20]   # optional; default: every test metric

Runs go to OUT/runs/<dataset>/<variant>/seed<N>/ (ordinary run folders). A run with a
metrics.json is skipped; one with a checkpoint is resumed; the rest are trained. Then
OUT/results.csv (one row per run) and OUT/summary.csv / summary.md (mean, std over seeds,
paired tests against the baseline) are written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from searec.config import build_config, deep_merge, read_yaml
from searec.errors import ConfigError
from searec.evaluation.stats import mean_std, paired_test
from searec.io import rows_to_csv, write_text
from searec.runs import resume, train
from searec.schema import StrictModel, validate
from searec.training.trainer import BEST, LAST


class ExperimentSpec(StrictModel):
    base: dict[str, Any] = Field(default_factory=dict)
    datasets: dict[str, str | None] = Field(default_factory=lambda: {"synthetic": None})
    variants: dict[str, dict[str, Any]]
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3])
    baseline: str | None = None
    metrics: list[str] | None = None


def load_spec(path: str | Path) -> tuple[ExperimentSpec, Path]:
    path = Path(path)
    tree = read_yaml(path)
    spec = validate(ExperimentSpec, tree, str(path))
    if not spec.variants:
        raise ConfigError(f"{path}: 'variants' is empty; declare at least one")
    if spec.baseline is not None and spec.baseline not in spec.variants:
        raise ConfigError(f"{path}: baseline {spec.baseline!r} is not one of the variants "
                          f"({', '.join(spec.variants)})")
    if len(set(spec.seeds)) != len(spec.seeds) or not spec.seeds:
        raise ConfigError(f"{path}: 'seeds' must be a non-empty list of distinct integers")
    return spec, path.parent.resolve()


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


def run_experiment(
    spec_path: str | Path, out: str | Path, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    spec, root = load_spec(spec_path)
    out = Path(out)
    runs = plan(spec, root, out)  # validates every config before any training starts
    for i, r in enumerate(runs, 1):
        tag = f"[{i}/{len(runs)}] {r['dataset']} / {r['variant']} / seed {r['seed']}"
        run_dir: Path = r["dir"]
        if (run_dir / "metrics.json").is_file():
            log(f"{tag}: done, skipped")
            continue
        if (run_dir / LAST).is_file() or (run_dir / BEST).is_file():
            log(f"{tag}: resuming")
            resume(run_dir, log=log)
        else:
            log(f"{tag}: training")
            train(r["config"], run_dir, overwrite=True, log=log)
    rows = collect(runs)
    write_tables(rows, spec, out)
    return rows


def collect(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        metrics = json.loads((r["dir"] / "metrics.json").read_text())
        row = {"dataset": r["dataset"], "variant": r["variant"], "seed": r["seed"],
               "best_epoch": metrics["best_epoch"], "train_seconds": metrics["train_seconds"]}
        row.update({f"test_{k}": v for k, v in metrics["test"].items()})
        row.update({f"valid_{k}": v for k, v in metrics["valid"].items()})
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]], spec: ExperimentSpec) -> list[dict[str, Any]]:
    metrics = spec.metrics or sorted({k[5:] for r in rows for k in r if k.startswith("test_")})
    out = []
    for ds in spec.datasets:
        by_variant = {v: sorted((r for r in rows if r["dataset"] == ds and r["variant"] == v),
                                key=lambda r: r["seed"]) for v in spec.variants}
        for variant, vrows in by_variant.items():
            for m in metrics:
                values = [r[f"test_{m}"] for r in vrows]
                mean, std = mean_std(values)
                entry: dict[str, Any] = {"dataset": ds, "variant": variant, "metric": m,
                                         "mean": mean, "std": std, "seeds": len(values)}
                if spec.baseline and variant != spec.baseline:
                    base = [r[f"test_{m}"] for r in by_variant[spec.baseline]]
                    test = paired_test(values, base)
                    entry.update({"baseline": spec.baseline, "diff": test["diff"],
                                  "p_ttest": test["p_ttest"], "p_wilcoxon": test["p_wilcoxon"]})
                out.append(entry)
    return out


def _fmt_p(p: float) -> str:
    return "n/a" if p is None or math.isnan(p) else f"{p:.3g}"


def write_tables(rows: list[dict[str, Any]], spec: ExperimentSpec, out: Path) -> None:
    summary = summarise(rows, spec)
    write_text(out / "results.csv", rows_to_csv(rows))
    write_text(out / "summary.csv", rows_to_csv(summary))
    lines = ["| dataset | variant | metric | mean ± std (seeds) | vs baseline | paired t p |",
             "|---|---|---|---|---|---|"]
    for s in summary:
        vs = f"{s['diff']:+.4f}" if "diff" in s else "baseline" if spec.baseline else ""
        lines.append(f"| {s['dataset']} | {s['variant']} | {s['metric']} | {s['mean']:.4f} ± "
                     f"{s['std']:.4f} ({s['seeds']}) | {vs} | {_fmt_p(s.get('p_ttest'))} |")
    write_text(out / "summary.md", "\n".join(lines) + "\n")
