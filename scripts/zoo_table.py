"""One Markdown table of several experiment grids' summaries, a column group per dataset.

    python scripts/zoo_table.py runs/zoo-tiktok runs/zoo-ml100k [--metrics recall@20 ndcg@20]

Reads each grid's summary.csv (written by `searec experiment`); one row per variant in
the order the first grid lists them. Per dataset and metric: mean ± std over the seeds
(n when fewer than the most any variant has), then the paired difference to the variant
it is compared with (SEA, or X for X_sep) and the paired t-test p of the first metric.
A variant a grid has not finished is shown as "-".
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def read_summary(grid: Path) -> list[dict[str, str]]:
    with open(grid / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def cell(row: dict[str, str] | None, most_seeds: int) -> str:
    if row is None or not row["mean"]:
        return "-"
    seeds = int(row["seeds"])
    text = f"{float(row['mean']):.4f} ± {float(row['std'] or 0):.4f}"
    return text + (f" (n={seeds})" if seeds < most_seeds else "")


def comparison(row: dict[str, str] | None) -> str:
    if row is None or not row.get("baseline"):
        return "-" if row is None else "baseline"
    p = float(row["p_ttest"]) if row["p_ttest"] not in ("", "nan") else float("nan")
    p_text = "n/a" if p != p else (f"{p:.2g}" if p < 0.01 else f"{p:.2f}")
    return f"{float(row['diff']):+.4f} vs {row['baseline']} (p {p_text})"


def table(grids: list[Path], metrics: list[str]) -> str:
    summaries = [read_summary(g) for g in grids]
    variants = list(dict.fromkeys(r["variant"] for rows in summaries for r in rows))
    header = ["model"]
    blocks = []
    for rows in summaries:
        datasets = sorted({r["dataset"] for r in rows})
        for dataset in datasets:
            index = {(r["variant"], r["metric"]): r for r in rows if r["dataset"] == dataset}
            most = max((int(r["seeds"]) for r in index.values()), default=0)
            header += [f"{dataset} {m}" for m in metrics] + [f"{dataset} paired, {metrics[0]}"]
            blocks.append((index, most))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in variants:
        cells = [variant]
        for index, most in blocks:
            cells += [cell(index.get((variant, m)), most) for m in metrics]
            cells.append(comparison(index.get((variant, metrics[0]))))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("grids", nargs="+", type=Path, help="experiment output folders")
    parser.add_argument("--metrics", nargs="+", default=["recall@20", "ndcg@20"])
    args = parser.parse_args()
    print(table(args.grids, args.metrics))


if __name__ == "__main__":
    main()
