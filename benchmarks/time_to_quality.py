"""Time to quality: the reference preset vs searec's default SEA on one dataset.

Trains (or resumes, or just reads) two run folders with the same data and seed, then asks:
how long did each need to first reach the reference preset's best validation recall@20,
and what are both final test metrics? Writes benchmarks/results/time_to_quality.{json,md}.

Two clocks. "As run" sums train + validation seconds from each history.csv: honest, but a
run of hours shares the machine with whatever else ran meanwhile. "Side by side" times
short fresh runs of both configurations in turn, in this one process (``--time-rounds``
rounds of ``--time-epochs`` epochs each), and multiplies the median cost of an epoch
(train + validation, which is the same work every epoch) by the epochs each run needed:
both configurations then see the same machine load. The headline ratio uses the second.

    python benchmarks/time_to_quality.py --data ../shared/data/tiktok --out runs/ttq \
        --reference-overrides "model.knn_weights={image: 0.1, audio: 0.9}" \
        [--threads 1] [--analyse-only] [--time-rounds 3 --time-epochs 2]

Runs go to OUT/reference and OUT/default; an interrupted benchmark continues where it
stopped (finished runs are kept, unfinished ones resumed).
"""

from __future__ import annotations

import argparse
import csv
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
    from searec.training.run import resume, train

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


def epoch_costs(out: Path, rounds: int, epochs: int) -> dict[str, dict]:
    """Median / min seconds of one epoch (train + validation) per run, timed in turn."""
    import statistics
    import tempfile

    from searec.training.run import run_config, train

    samples: dict[str, list[float]] = {"reference": [], "default": []}
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
    costs: dict[str, dict] = {
        name: {"median_s": statistics.median(v), "min_s": min(v), "n": len(v), "samples_s": v}
        for name, v in samples.items()}
    costs["timing"] = {"rounds": rounds, "epochs_per_run": epochs}
    return costs


def curve_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "history.csv") as fh:
        return list(csv.DictReader(fh))


def analyse(out: Path, costs: dict[str, dict] | None = None) -> dict:
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
        result["epoch_cost"] = costs
        for name in runs:
            epoch = result[name]["reached_at_epoch"]
            result[name]["reached_after_s_side_by_side"] = (
                epoch * costs[name]["median_s"] if epoch is not None else None)
        ref = result["reference"]["reached_after_s_side_by_side"]
        ours = result["default"]["reached_after_s_side_by_side"]
        result["time_ratio"] = ours / ref if ref and ours else None
        e_ref, e_ours = (result[n]["reached_at_epoch"] for n in ("reference", "default"))
        result["time_ratio_fastest_epochs"] = (
            e_ours * costs["default"]["min_s"] / (e_ref * costs["reference"]["min_s"])
            if e_ref and e_ours else None)
    return result


def markdown(r: dict, meta: dict) -> str:
    lines = ["# Time to quality", "",
             f"Target: the reference preset's best validation {METRIC} = "
             f"{r['target_valid']:.4f}. {meta['machine']}, torch {meta['torch']}, "
             f"{meta['threads']} thread(s).", "",
             "\"As run\": train + validation seconds summed from each run's history.csv "
             "(other jobs shared the machine for parts of both runs). \"Side by side\": "
             "epochs needed x the median epoch cost of that configuration, both timed in "
             "turn in one process.", "",
             f"| run | epochs | best valid | reaches target at epoch | as run (s) | epoch cost "
             f"(s, median) | side by side (s) | test {METRIC} | test ndcg@20 | finished |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    costs = r.get("epoch_cost", {})

    def sec(x: float | None) -> str:
        return f"{x:.0f}" if x is not None else "not reached"

    for name in ("reference", "default"):
        x = r[name]
        test = x["test"] or {}
        cost = costs.get(name)
        cost_s = f"{cost['median_s']:.2f}" if cost else "-"
        side = sec(x.get("reached_after_s_side_by_side")) if cost else "-"
        lines.append(
            f"| {name} | {x['epochs_run']} | {x['best_valid']:.4f} | "
            f"{x['reached_at_epoch'] or '-'} | {sec(x['reached_after_s'])} | "
            f"{cost_s} | {side} | "
            f"{test.get(METRIC, float('nan')):.4f} | {test.get('ndcg@20', float('nan')):.4f} | "
            f"{x['finished']} |")
    lines.append("")
    if r.get("time_ratio_as_run") is not None:
        lines.append(f"Time ratio default / reference, as run: {r['time_ratio_as_run']:.3f}.")
    if r.get("time_ratio") is not None:
        costs_n = costs["default"]["n"]
        lines.append(f"Time ratio default / reference, side by side (median of {costs_n} "
                     f"timed epochs each): {r['time_ratio']:.3f}; with each configuration's "
                     f"fastest epoch instead: {r['time_ratio_fastest_epochs']:.3f}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "tiktok")
    ap.add_argument("--out", type=Path, default=Path("runs/ttq"))
    ap.add_argument("--threads", type=int, default=1)
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
    args = ap.parse_args()
    if not args.analyse_only and "reference" in args.train:
        train_or_resume(args.out / "reference", "reference", args.data, args.threads,
                        args.reference_overrides)
    if not args.analyse_only and "default" in args.train:
        train_or_resume(args.out / "default", None, args.data, args.threads,
                        ["model.name=sea", *args.default_overrides])
    costs = None
    stored = args.out / "epoch_costs.json"  # timing is slow: kept for later analyses
    if stored.is_file() and not args.retime:
        costs = json.loads(stored.read_text())
    elif args.time_rounds > 0:
        costs = epoch_costs(args.out, args.time_rounds, args.time_epochs)
        stored.write_text(json.dumps(costs, indent=2))
    result = analyse(args.out, costs)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "torch": torch.__version__, "threads": args.threads, "data": str(args.data)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "time_to_quality.json").write_text(json.dumps({"meta": meta, **result},
                                                             indent=2))
    (RESULTS / "time_to_quality.md").write_text(markdown(result, meta))
    print(markdown(result, meta))


if __name__ == "__main__":
    main()
