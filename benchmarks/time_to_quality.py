"""Time to quality: the reference preset vs searec's default SEA on one dataset.

For each seed, trains (or resumes, or just reads) two run folders with the same data and
that seed, then asks: how long did each need to first reach the reference preset's best
validation recall@20 (of the same seed), and what are both final test metrics? Writes
benchmarks/results/time_to_quality.{json,md}.

Two clocks. "As run" sums train + validation seconds from each history.csv: honest, but a
run of hours shares the machine with whatever else ran meanwhile. "Side by side" times
short fresh runs of both configurations in turn, in this one process (``--time-rounds``
rounds of ``--time-epochs`` epochs each), and multiplies the median cost of an epoch
(train + validation, which is the same work every epoch and for every seed) by the
epochs each run needed: both configurations then see the same machine load. The
headline ratio uses the second.

    python benchmarks/time_to_quality.py --data ../shared/data/tiktok --out runs/ttq \
        --reference-overrides "model.knn_weights={image: 0.1, audio: 0.9}" \
        [--seeds 999 1] [--threads 1] [--analyse-only] [--time-rounds 3 --time-epochs 2]

Runs go to OUT/seed-S/reference and OUT/seed-S/default; an interrupted benchmark
continues where it stopped (finished runs are kept, unfinished ones resumed).

With ``--target V`` the target is that fixed validation recall@20 instead (for TikTok,
0.0607: the authors' code after 12 epochs, 1,734 s here; #35): no reference run is
trained, each seed's default run needs only the epochs to reach it (cap them with
``--default-overrides train.epochs=N``), and the result goes to
benchmarks/results/STEM.{json,md} (``--name``, default time_to_quality_target):

    python benchmarks/time_to_quality.py --data ../shared/data/tiktok --out runs/ttq-target \
        --target 0.0607 --budget 11.5 --seeds 1 2 3 --default-overrides train.epochs=8 \
        --time-rounds 5 [--threads 2] [--name STEM]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METRIC = "recall@20"


def train_or_resume(run_dir: Path, preset: str | None, data: Path, threads: int,
                    overrides: list[str]) -> None:
    from searec.config import load_config
    from searec.runs import resume, train

    if (run_dir / "metrics.json").is_file():
        return
    if (run_dir / "last.pt").is_file():
        resume(run_dir)
        return
    extra = {"data": {"path": str(data.resolve()), "cold_users": "drop"},
             "train": {"threads": threads, "progress": False}}
    cfg = load_config(f"preset:{preset}" if preset else None, overrides, extra)
    train(cfg, run_dir, overwrite=True)


def curve(run_dir: Path) -> list[tuple[int, float, float]]:
    """(epoch, cumulative seconds, valid metric) per evaluated epoch."""
    out, total = [], 0.0
    for row in curve_rows(run_dir):
        total += float(row["train_seconds"]) + float(row.get("eval_seconds") or 0)
        if row.get(f"valid_{METRIC}"):
            out.append((int(row["epoch"]), total, float(row[f"valid_{METRIC}"])))
    return out


def first_reaching(points: list[tuple[int, float, float]], target: float):  # type: ignore[no-untyped-def]
    return next(((e, s) for e, s, v in points if v >= target), (None, None))


def epoch_costs(out: Path, rounds: int, epochs: int,
                names: tuple[str, ...] = ("reference", "default")) -> dict:
    """Median / min seconds of one epoch (train + validation) of the runs ``names`` in
    ``out``, timed in turn: ``{"runs": {name: {...}}, "rounds": ..., "epochs_per_run": ...}``."""
    import statistics
    import tempfile

    from searec.runs import run_config, train

    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in samples:
            cfg = run_config(out / name)
            cfg = cfg.model_copy(update={"train": cfg.train.model_copy(
                update={"epochs": epochs, "patience": epochs + 1})})
            with tempfile.TemporaryDirectory() as tmp:
                train(cfg, Path(tmp) / "run", test=False, log=lambda _m: None)
                for row in curve_rows(Path(tmp) / "run"):
                    samples[name].append(
                        float(row["train_seconds"]) + float(row.get("eval_seconds") or 0))
    runs = {name: {"median_s": statistics.median(v), "min_s": min(v), "n": len(v),
                   "samples_s": v} for name, v in samples.items()}
    return {"runs": runs, "rounds": rounds, "epochs_per_run": epochs}


def curve_rows(run_dir: Path) -> list[dict[str, str]]:
    from searec.io import read_csv_rows

    return read_csv_rows(run_dir / "history.csv")


def analyse(out: Path, costs: dict | None = None) -> dict:
    """One seed's two runs (``out/reference``, ``out/default``) against the reference's
    best validation score; ``costs`` from :func:`epoch_costs` adds the side-by-side clock."""
    runs = {name: out / name for name in ("reference", "default")}
    curves = {name: curve(d) for name, d in runs.items()}
    target = max(v for _, _, v in curves["reference"])
    result: dict = {"target_valid": target, "metric": METRIC}
    for name, d in runs.items():
        epoch, seconds = first_reaching(curves[name], target)
        metrics = json.loads((d / "metrics.json").read_text()) if (d / "metrics.json").is_file() \
            else None
        result[name] = {
            "epochs_run": curves[name][-1][0], "seconds_run": curves[name][-1][1],
            "best_valid": max(v for _, _, v in curves[name]),
            "reached_at_epoch": epoch, "reached_after_s": seconds,
            "finished": metrics is not None,
            "test": metrics["test"] if metrics else None,
        }
    ref, ours = result["reference"]["reached_after_s"], result["default"]["reached_after_s"]
    result["time_ratio_as_run"] = ours / ref if ref and ours else None
    result["time_ratio"] = None
    if costs:
        cost = costs["runs"]
        for name in runs:
            epoch = result[name]["reached_at_epoch"]
            result[name]["reached_after_s_side_by_side"] = (
                epoch * cost[name]["median_s"] if epoch is not None else None)
        ref = result["reference"]["reached_after_s_side_by_side"]
        ours = result["default"]["reached_after_s_side_by_side"]
        result["time_ratio"] = ours / ref if ref and ours else None
        e_ref, e_ours = (result[n]["reached_at_epoch"] for n in ("reference", "default"))
        result["time_ratio_fastest_epochs"] = (
            e_ours * cost["default"]["min_s"] / (e_ref * cost["reference"]["min_s"])
            if e_ref and e_ours else None)
    return result


def analyse_fixed(out: Path, target: float, costs: dict | None = None) -> dict:
    """One seed's default run (``out/default``) against a fixed validation ``target``;
    ``costs`` from :func:`epoch_costs` adds the side-by-side clock."""
    points = curve(out / "default")
    epoch, seconds = first_reaching(points, target)
    cost = (costs or {}).get("runs", {}).get("default")
    finished = out / "default" / "metrics.json"
    # the precision the run trained in (train.precision=auto resolves per machine)
    precision = json.loads(finished.read_text()).get("precision", "float32") \
        if finished.is_file() else None
    return {"target_valid": target, "metric": METRIC, "default": {
        "precision": precision,
        "epochs_run": points[-1][0], "best_valid": max(v for _, _, v in points),
        "reached_at_epoch": epoch, "reached_after_s": seconds,
        "reached_after_s_side_by_side": epoch * cost["median_s"]
        if cost and epoch is not None else None,
        "reached_after_s_fastest_epochs": epoch * cost["min_s"]
        if cost and epoch is not None else None}}


def markdown_fixed(per_seed: dict[int, dict], costs: dict | None, meta: dict,
                   budget_s: float | None) -> str:
    """The fixed-target result: per seed, epochs and seconds to the target."""
    target = next(iter(per_seed.values()))["target_valid"]
    cost = (costs or {}).get("runs", {}).get("default")
    precisions = {p["default"]["precision"] for p in per_seed.values()
                  if p["default"].get("precision")}
    lines = ["# Time to a fixed validation target", "",
             f"Target: validation {METRIC} {target:.4f}, SEA with its defaults"
             + (f" (trained in {', '.join(sorted(precisions))})" if precisions else "")
             + ". "
             f"{meta['machine']}, torch {meta['torch']}, {meta['threads']} thread(s).", "",
             "\"As run\": train + validation seconds summed from each run's history.csv. "
             "\"Side by side\": epochs needed x the median (fastest) cost of an epoch, "
             + (f"timed in this process ({costs['rounds']} rounds of "
                f"{costs['epochs_per_run']} epochs; median {cost['median_s']:.2f} s, "
                f"fastest {cost['min_s']:.2f} s)." if cost else "not timed."), "",
             "| seed | reaches target at epoch | best valid (epochs run) | as run (s) | "
             "side by side (s) | fastest epochs (s) |", "|---|---|---|---|---|---|"]

    def sec(x: float | None) -> str:
        return f"{x:.1f}" if x is not None else "not reached"

    for seed, per in per_seed.items():
        x = per["default"]
        lines.append(f"| {seed} | {x['reached_at_epoch'] or '-'} | {x['best_valid']:.4f} "
                     f"({x['epochs_run']}) | {sec(x['reached_after_s'])} | "
                     f"{sec(x['reached_after_s_side_by_side'])} | "
                     f"{sec(x['reached_after_s_fastest_epochs'])} |")
    side = [p["default"]["reached_after_s_side_by_side"] for p in per_seed.values()]
    if budget_s is not None:
        worst = max(side) if side and None not in side else None
        lines += ["", f"- Worst side-by-side time over seeds {list(per_seed)}: "
                  + (f"{worst:.1f} s" if worst is not None else "none (a seed did not "
                     "reach the target, or epochs were not timed)")
                  + f"; budget {budget_s:g} s: "
                  + ("met" if worst is not None and worst <= budget_s else "not met") + "."]
    return "\n".join(lines) + "\n"


def summarise(per_seed: dict[int, dict]) -> dict:
    """Across seeds: the worst ratio and whether the default's test score was never lower."""
    ratios = [r["time_ratio"] for r in per_seed.values()]
    test = [(r["reference"]["test"], r["default"]["test"]) for r in per_seed.values()]
    return {
        "seeds": list(per_seed),
        "worst_time_ratio": max(ratios) if None not in ratios and ratios else None,
        "default_test_at_least_reference": all(
            ref is not None and ours is not None and ours[METRIC] >= ref[METRIC]
            for ref, ours in test),
    }


def markdown(r: dict, meta: dict) -> str:
    costs = r.get("epoch_cost") or {}
    lines = ["# Time to quality", "",
             f"Target: each seed's reference-preset best validation {METRIC}. "
             f"{meta['machine']}, torch {meta['torch']}, {meta['threads']} thread(s).", "",
             "\"As run\": train + validation seconds summed from each run's history.csv "
             "(other jobs shared the machine for parts of the runs). \"Side by side\": "
             "epochs needed x the median epoch cost of that configuration, both timed in "
             "turn in one process"
             + (f" ({costs['rounds']} rounds of {costs['epochs_per_run']} epochs each)."
                if costs else " (not timed)."), "",
             f"| seed | run | epochs | best valid | target | reaches target at epoch | "
             f"as run (s) | epoch cost (s, median) | side by side (s) | test {METRIC} | "
             f"test ndcg@20 | finished |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def sec(x: float | None) -> str:
        return f"{x:.0f}" if x is not None else "not reached"

    for seed, per in r["per_seed"].items():
        for name in ("reference", "default"):
            x = per[name]
            test = x["test"] or {}
            cost = costs.get("runs", {}).get(name)
            cost_s = f"{cost['median_s']:.2f}" if cost else "-"
            side = sec(x.get("reached_after_s_side_by_side")) if cost else "-"
            lines.append(
                f"| {seed} | {name} | {x['epochs_run']} | {x['best_valid']:.4f} | "
                f"{per['target_valid']:.4f} | {x['reached_at_epoch'] or '-'} | "
                f"{sec(x['reached_after_s'])} | {cost_s} | {side} | "
                f"{test.get(METRIC, float('nan')):.4f} | "
                f"{test.get('ndcg@20', float('nan')):.4f} | {x['finished']} |")
    lines.append("")
    for seed, per in r["per_seed"].items():
        parts = []
        if per.get("time_ratio") is not None:
            parts.append(f"side by side {per['time_ratio']:.3f} (fastest epochs "
                         f"{per['time_ratio_fastest_epochs']:.3f})")
        if per.get("time_ratio_as_run") is not None:
            parts.append(f"as run {per['time_ratio_as_run']:.3f}")
        if per["default"]["reached_at_epoch"] is None:
            parts.append(f"the default never reached the target (its best "
                         f"{per['default']['best_valid']:.4f} < {per['target_valid']:.4f})")
        if not per["reference"]["finished"]:
            parts.append("the reference run has not finished, so its target may still rise")
        if parts:
            lines.append(f"- Seed {seed}, time ratio default / reference: "
                         + "; ".join(parts) + ".")
    summary = r["summary"]
    worst = summary["worst_time_ratio"]
    lines.append(f"- Worst side-by-side ratio over seeds {summary['seeds']}: "
                 + (f"{worst:.3f}" if worst is not None else "none (a seed has no ratio)")
                 + f"; default test {METRIC} >= reference's on every seed: "
                 f"{summary['default_test_at_least_reference']}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "tiktok")
    ap.add_argument("--out", type=Path, default=Path("runs/ttq"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[999],
                    help="one pair of runs per seed, in OUT/seed-S/{reference,default}")
    ap.add_argument("--analyse-only", action="store_true",
                    help="read the two run folders, train nothing")
    ap.add_argument("--train", nargs="+", choices=["reference", "default"],
                    default=["reference", "default"],
                    help="which runs to train or resume before the analysis")
    ap.add_argument("--time-rounds", type=int, default=3,
                    help="rounds of side-by-side epoch timing (0: skip)")
    ap.add_argument("--time-epochs", type=int, default=2, help="epochs per timing run")
    ap.add_argument("--retime", action="store_true",
                    help="time again even if OUT/epoch_costs.json exists")
    ap.add_argument("--reference-overrides", nargs="*", default=[],
                    help="key=value overrides of the reference run, e.g. "
                    "'model.knn_weights={image: 0.1, audio: 0.9}' for TikTok's modalities")
    ap.add_argument("--default-overrides", nargs="*", default=[],
                    help="key=value overrides of the default SEA run")
    ap.add_argument("--target", type=float, default=None,
                    help="a fixed validation recall@20 to reach instead of the reference "
                    "run's best (no reference run is trained)")
    ap.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                    help="with --target: the time the worst seed should stay within")
    ap.add_argument("--name", default="time_to_quality_target", metavar="STEM",
                    help="with --target: the result files' name in benchmarks/results")
    args = ap.parse_args()
    seed_dirs = {seed: args.out / f"seed-{seed}" for seed in args.seeds}
    if args.target is not None:
        args.train = [] if args.analyse_only else ["default"]
    for seed, out in seed_dirs.items():
        if not args.analyse_only and "reference" in args.train:
            train_or_resume(out / "reference", "reference", args.data, args.threads,
                            [*args.reference_overrides, f"train.seed={seed}"])
        if not args.analyse_only and "default" in args.train:
            train_or_resume(out / "default", None, args.data, args.threads,
                            ["model.name=sea", *args.default_overrides, f"train.seed={seed}"])
    costs = None
    stored = args.out / "epoch_costs.json"  # timing is slow: kept for later analyses
    if stored.is_file() and not args.retime:
        costs = json.loads(stored.read_text())
    elif args.time_rounds > 0:
        # an epoch does the same work whatever the seed: the first seed's configs are timed
        names = ("default",) if args.target is not None else ("reference", "default")
        costs = epoch_costs(seed_dirs[args.seeds[0]], args.time_rounds, args.time_epochs,
                            names)
        stored.write_text(json.dumps(costs, indent=2))
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "torch": torch.__version__, "threads": args.threads, "data": str(args.data)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.target is not None:
        fixed = {seed: analyse_fixed(out, args.target, costs)
                 for seed, out in seed_dirs.items()}
        (RESULTS / f"{args.name}.json").write_text(json.dumps(
            {"meta": meta, "epoch_cost": costs, "budget_s": args.budget,
             "per_seed": fixed}, indent=2))
        text = markdown_fixed(fixed, costs, meta, args.budget)
        (RESULTS / f"{args.name}.md").write_text(text)
        print(text)
        return
    per_seed = {seed: analyse(out, costs) for seed, out in seed_dirs.items()}
    result = {"metric": METRIC, "epoch_cost": costs, "per_seed": per_seed,
              "summary": summarise(per_seed)}
    (RESULTS / "time_to_quality.json").write_text(json.dumps({"meta": meta, **result},
                                                             indent=2))
    (RESULTS / "time_to_quality.md").write_text(markdown(result, meta))
    print(markdown(result, meta))


if __name__ == "__main__":
    main()
