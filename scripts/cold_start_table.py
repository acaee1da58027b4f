"""The cold-start comparison table of an experiment folder (experiments/cold-start-*.yaml):
per model, recall@20 over all, warm, cold (whole catalogue) and cold-among-cold test
items, with the cold-item path and without it (the same run, paired seed by seed:
difference and paired t-test p), mean ± std over the finished seeds.

    python scripts/cold_start_table.py runs/cold-start-tiktok [--out table.md]
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from searec.evaluation.stats import mean_std, paired_test

PARTS = (("all", "test_recall@20"), ("warm", "test_warm_recall@20"),
         ("cold (whole catalogue)", "test_cold_recall@20"),
         ("cold (among cold)", "test_cold_catalogue_recall@20"))


def _cell(values: list[float]) -> str:
    if not values:
        return "n/a"
    mean, std = mean_std(values)
    return f"{mean:.4f} ± {std:.4f}"


def _paired(with_path: list[float], without: list[float]) -> str:
    test = paired_test(with_path, without)
    p = test["p_ttest"]
    return f"{test['diff']:+.4f} (p = {p:.2g})" if not math.isnan(p) else \
        f"{test['diff']:+.4f} (p = n/a)"


def table(folder: Path) -> str:
    rows = list(csv.DictReader((folder / "results.csv").open()))
    lines = ["| model | seeds | view | with cold path | without | difference |",
             "|---|---|---|---|---|---|"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["seed"])
        for label, column in PARTS:
            have = [r for r in mine if r.get(column)]
            values = [float(r[column]) for r in have]
            plain = [float(r[f"nopath_{column}"]) for r in have if r.get(f"nopath_{column}")]
            paired = _paired(values, plain) if len(plain) == len(values) and plain else ""
            lines.append(f"| {variant} | {len(have)} | {label} | {_cell(values)} | "
                         f"{_cell(plain) if plain else '-'} | {paired} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = table(args.folder)
    if args.out:
        args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
