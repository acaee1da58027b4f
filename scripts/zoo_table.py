"""Markdown tables of an experiment grid: one per dataset, a row per variant, every variant
paired with the baseline and, where the spec's compare_with names one, with that variant.

    python scripts/zoo_table.py experiments/zoo-tiktok.yaml runs/zoo-tiktok \
        [--metrics recall@20 ndcg@20]

Reads the grid's results.csv (written by `searec experiment`, also with --summary-only).
Cells: mean ± std over the seeds (n= when fewer than the most any variant has); comparisons: the
mean paired difference over the seeds both have and the two-sided paired t-test p
(searec.evaluation.stats.paired_test). Variants without a finished run are left out.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from searec.evaluation.stats import mean_std, paired_test
from searec.experiments.grid import ExperimentSpec, load_spec


def read_results(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else (f"{p:.2g}" if p < 0.01 else f"{p:.2f}")


def compare(runs: dict[int, float], ref: dict[int, float]) -> str:
    seeds = sorted(set(runs) & set(ref))
    if len(seeds) < 2:
        return "-"
    test = paired_test([runs[s] for s in seeds], [ref[s] for s in seeds])
    return f"{test['diff']:+.4f} ({_p(test['p_ttest'])})"


def dataset_table(spec: ExperimentSpec, rows: list[dict[str, str]], dataset: str,
                  metrics: list[str]) -> str:
    values: dict[str, dict[str, dict[int, float]]] = {}
    for r in rows:
        if r["dataset"] == dataset:
            for m in metrics:
                if r.get(f"test_{m}"):
                    values.setdefault(r["variant"], {}).setdefault(m, {})[int(r["seed"])] = \
                        float(r[f"test_{m}"])
    baseline = spec.baseline
    pairs = [v for v in spec.variants if v in spec.compare_with]
    header = ["model", *metrics, *(f"{m} vs {baseline} (p)" for m in metrics if baseline)]
    if pairs:
        header += [f"{m} vs backbone (p)" for m in metrics]
    most = max((len(s) for v in values.values() for s in v.values()), default=0)
    lines = [f"{dataset}:", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in (v for v in spec.variants if v in values):
        own = values[variant]
        cells = [variant]
        for m in metrics:
            seeds = own.get(m, {})
            mean, std = mean_std(list(seeds.values())) if seeds else (math.nan, math.nan)
            cells.append("-" if not seeds else f"{mean:.4f} ± {std:.4f}"
                         + (f" (n={len(seeds)})" if len(seeds) < most else ""))
        if baseline:
            cells += ["baseline" if variant == baseline else
                      compare(own.get(m, {}), values.get(baseline, {}).get(m, {}))
                      for m in metrics]
        if pairs:
            backbone = spec.compare_with.get(variant)
            cells += [compare(own.get(m, {}), values.get(backbone, {}).get(m, {}))
                      if backbone else "" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(spec_path: Path, out: Path, metrics: list[str]) -> str:
    spec, _ = load_spec(spec_path)
    rows = read_results(out)
    return "\n\n".join(dataset_table(spec, rows, dataset, metrics)
                       for dataset in spec.datasets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", type=Path, help="the experiment file")
    parser.add_argument("out", type=Path, help="its output folder")
    parser.add_argument("--metrics", nargs="+", default=["recall@20", "ndcg@20"])
    args = parser.parse_args()
    print(tables(args.spec, args.out, args.metrics))


if __name__ == "__main__":
    main()
