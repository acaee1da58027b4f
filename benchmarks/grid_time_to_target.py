"""Time to a reference's quality, read from a finished experiment grid.

    python benchmarks/grid_time_to_target.py runs/sea-cost [--dataset tiktok]
        [--reference lightgcn] [--epoch-costs benchmarks/results/zoo_cost_X.json]
        [--name grid_time_to_target] [--note TEXT]

For each seed, the target is the reference variant's best validation recall@20 (over its
epochs); for every variant and seed, the epochs and seconds (train + validation, summed
from history.csv "as run") until its validation recall@20 first reached that target,
and its median seconds per training epoch. The runs of a grid started with ``--jobs 2``
shared the machine two at a time (and with whatever else ran), so "as run" seconds
compare only roughly. ``--epoch-costs`` takes a zoo_cost.py result whose rows are labelled
with the grid's variant names (``--variant "default=sea ..."``), measured one at a time on
an idle machine: then each run's epochs to the target times that variant's median epoch
+ validation seconds too ("side by side"). Writes benchmarks/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))

# the same reading of a run's history as the time-to-quality benchmark
from time_to_quality import METRIC, curve, curve_rows, first_reaching  # noqa: E402


def analyse(grid: Path, dataset: str, reference: str,
            epoch_costs: dict[str, float] | None = None) -> dict:
    runs = grid / "runs" / dataset
    finished = {v.name: {int(s.name.removeprefix("seed")): s for s in v.iterdir()
                         if s.is_dir() and (s / "metrics.json").is_file()}
                for v in sorted(runs.iterdir()) if v.is_dir()}
    if not finished.get(reference):
        raise SystemExit(f"{runs / reference}: no finished runs of the reference variant")
    targets = {seed: max(value for _, _, value in curve(run))
               for seed, run in sorted(finished[reference].items())}
    out = {}
    for variant, seeds in finished.items():
        rows = []
        for seed, target in targets.items():
            if seed not in seeds:
                continue
            points = curve(seeds[seed])  # (epoch, cumulative seconds, value)
            epoch, seconds = first_reaching(points, target)
            cost = (epoch_costs or {}).get(variant)
            rows.append({"seed": seed, "target": target, "epoch": epoch, "seconds": seconds,
                         "side_by_side_seconds": (None if epoch is None or cost is None
                                                  else epoch * cost),
                         "best": max(value for _, _, value in points),
                         "epoch_s_median": statistics.median(
                             float(r["train_seconds"]) for r in curve_rows(seeds[seed]))})
        out[variant] = rows
    return {"targets": targets, "variants": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("grid", type=Path, help="the experiment folder (searec experiment --out)")
    ap.add_argument("--dataset", default="tiktok")
    ap.add_argument("--reference", default="lightgcn")
    ap.add_argument("--epoch-costs", type=Path, help="zoo_cost.py JSON, rows labelled "
                    "with the grid's variant names")
    ap.add_argument("--name", default="grid_time_to_target")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    costs = None
    if args.epoch_costs:
        costs = {r["variant"]: r["epoch_s_median"] + r["eval_s_median"]
                 for r in json.loads(args.epoch_costs.read_text())["models"]
                 if r.get("epoch_s_median") is not None}
    result = analyse(args.grid, args.dataset, args.reference, costs)
    result["meta"] = {"grid": str(args.grid), "dataset": args.dataset,
                      "reference": args.reference, "note": args.note,
                      "epoch_costs": str(args.epoch_costs) if costs else None,
                      "epoch_plus_validation_s": costs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Time to {args.reference}'s best valid_{METRIC} on `{args.dataset}`", "",
             f"Grid `{args.grid}`; per seed, the target is {args.reference}'s best "
             f"valid_{METRIC}. Seconds: train + validation up to the first epoch at the target, "
             "as run (from history.csv)"
             + (f"; side by side: epochs to target x the epoch + validation seconds of "
                f"`{args.epoch_costs}`" if costs else "") + "."
             + (f" {args.note}" if args.note else ""), "",
             "| variant | reached (seeds) | epochs to target (median) | seconds to target, "
             "as run (median) | side by side (median) | s / epoch as run (median) | "
             "per seed: epoch, seconds as run |", "|---|---|---|---|---|---|---|"]
    for variant, rows in result["variants"].items():
        reached = [r for r in rows if r["epoch"] is not None]
        per_seed = "; ".join(f"{r['seed']}: " + ("never" if r["epoch"] is None else
                                                 f"{r['epoch']}, {r['seconds']:.1f}")
                             for r in rows)
        epochs = (f"{statistics.median(r['epoch'] for r in reached):g}" if reached else "-")
        seconds = (f"{statistics.median(r['seconds'] for r in reached):.1f}"
                   if reached else "-")
        side = [r["side_by_side_seconds"] for r in reached
                if r["side_by_side_seconds"] is not None]
        side_s = f"{statistics.median(side):.1f}" if side else "-"
        lines.append(f"| {variant} | {len(reached)} of {len(rows)} | {epochs} | {seconds} | "
                     f"{side_s} | {statistics.median(r['epoch_s_median'] for r in rows):.2f} "
                     f"| {per_seed} |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
