"""Each model's cost on one dataset: build time, seconds per training epoch, seconds per
full evaluation, and peak resident memory, every model in a fresh process.

    python benchmarks/zoo_cost.py [--data ../shared/data/tiktok] [--epochs 4] [--threads 1]
        [--models a,b,...] [--set KEY=VALUE ...] [--variant "LABEL=MODEL KEY=VALUE ..."]
        [--name zoo_cost]

Every registered model with its defaults, and each backbone that takes SEA's separation
once more with it (``<model>+sep``); ``--variant`` adds a model with overrides of its
own under a label (e.g. ``--variant "sea-64=sea model.embedding_dim=64"``). Each runs
``--epochs`` epochs with a full validation evaluation after each (no early stop) in its
own process, so the peak resident set size (ru_maxrss) is that model's alone, data
loading included. Epoch and evaluation times are the min and median over the epochs
after the first (the first includes warm-up). Each row names the precision the run
trained in (train.precision=auto: bfloat16 where the CPU has bf16 arithmetic). Writes
benchmarks/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def variants() -> list[str]:
    """Every model, then '<model>+sep' for each backbone that takes the separation."""
    from searec.models import get_model_class, registry

    names = sorted(registry())
    with_sep = [f"{n}+sep" for n in names
                if n != "sea" and "separation" in get_model_class(n).Params.model_fields]
    return names + with_sep


def min_median_after_first(seconds: list[float]) -> tuple[float | None, float | None]:
    """Min and median over the epochs after the first (warm-up), all epochs when there is
    only one; (None, None) when there are none."""
    later = seconds[1:] or seconds
    return (min(later), statistics.median(later)) if later else (None, None)


def measure_one(variant: str, data: str, epochs: int, threads: int,
                settings: Sequence[str] = ()) -> dict:
    """Train `variant` for `epochs` epochs in this process; times and peak RSS."""
    from searec.config import load_config
    from searec.runs import train

    name, _, sep = variant.partition("+")
    overrides = [f"model.name={name}", f"train.epochs={epochs}", f"train.threads={threads}",
                 "train.progress=false", "train.patience=1000", "data.cold_users=drop",
                 f"data.path={data}", *settings]
    extra = {"model": {"separation": {}}} if sep else None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        run = Path(out) / "run"
        metrics = train(load_config(None, overrides, extra), run, log=lambda _m: None)
        with open(run / "history.csv", newline="") as handle:
            history = list(csv.DictReader(handle))
    wall = time.perf_counter() - start
    # models with nothing to train (pop, itemknn) have no epochs: setup and evaluation only
    train_s = [float(r["train_seconds"]) for r in history if r.get("train_seconds")]
    eval_s = [float(r["eval_seconds"]) for r in history if r.get("eval_seconds")]
    epoch_min, epoch_median = min_median_after_first(train_s)
    eval_min, eval_median = min_median_after_first(eval_s)
    return {
        "variant": variant, "epochs": len(train_s),
        "epoch_s_min": epoch_min, "epoch_s_median": epoch_median,
        "first_epoch_s": train_s[0] if train_s else None,
        "eval_s_min": eval_min, "eval_s_median": eval_median,
        # load, graphs and model construction: what training and every evaluation left
        "setup_s": wall - metrics["train_seconds"] - metrics["eval_seconds"],
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "valid_recall_at_20": metrics["valid"]["recall@20"],
        "precision": metrics["precision"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "tiktok"))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="", help="comma-separated variants (default: all)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="config overrides for every model, e.g. train.precision=float32")
    ap.add_argument("--variant", action="append", default=[], metavar='"LABEL=MODEL K=V ..."',
                    help="also measure MODEL with these overrides (after --set), as LABEL; "
                    "repeatable")
    ap.add_argument("--name", default="zoo_cost")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows of an earlier <name>.json for variants not run now")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # child: measure this variant, print JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.data, args.epochs, args.threads,
                                     args.set)))
        return
    import torch

    # (label, variant as measure_one names it, overrides after --set)
    plan = [(v, v, []) for v in (args.models.split(",") if args.models
                                 else [] if args.variant else variants())]
    for spec in args.variant:
        head, *overrides = shlex.split(spec)
        label, _, model = head.partition("=")
        if not label or not model:
            ap.error(f"--variant {spec!r}: expected \"LABEL=MODEL KEY=VALUE ...\"")
        plan.append((label, model, overrides))
    rows = []
    for label, variant, overrides in plan:
        settings = [*args.set, *overrides]
        cmd = [sys.executable, __file__, "--one", variant, "--data", args.data,
               "--epochs", str(args.epochs), "--threads", str(args.threads),
               *(["--set", *settings] if settings else [])]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            rows.append({"variant": label, "error": done.stderr.strip().splitlines()[-3:]})
        else:
            rows.append({**json.loads(done.stdout.strip().splitlines()[-1]),
                         "variant": label, "overrides": overrides})
        print(json.dumps(rows[-1]), flush=True)
    previous = RESULTS / f"{args.name}.json"
    if args.merge and previous.is_file():
        done = {r["variant"] for r in rows}
        order = variants()
        kept = [r for r in json.loads(previous.read_text())["models"]
                if r["variant"] not in done]
        rows = sorted(kept + rows, key=lambda r: order.index(r["variant"])
                      if r["variant"] in order else len(order))
    meta = {"data": args.data, "epochs": args.epochs, "threads": args.threads,
            "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "settings": args.set, "note": args.note}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"meta": meta, "models": rows},
                                                          indent=1) + "\n")
    lines = [f"# Cost per model on `{Path(args.data).name}`", "",
             f"{args.epochs} epochs each, one process per model, {args.threads} thread(s), "
             f"torch {meta['torch']}, {meta['cpus']} CPUs ({meta['processor']}). Epoch and "
             "evaluation: min / median over the epochs after the first. Peak RSS: the "
             "process's maximum resident set (data, graphs, model, training, evaluation)."
             + (f" Settings: {' '.join(args.set)}." if args.set else "")
             + (f" {args.note}" if args.note else ""), "",
             "| model | precision | setup s | s / epoch (min / median) | s / full evaluation | "
             "peak RSS GiB |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | failed: {r['error'][-1]} | | | | |")
            continue
        ev = (f"{r['eval_s_min']:.2f} / {r['eval_s_median']:.2f}"
              if r["eval_s_min"] is not None else "")
        epoch = (f"{r['epoch_s_min']:.2f} / {r['epoch_s_median']:.2f}"
                 if r["epoch_s_min"] is not None else "nothing to train")
        lines.append(f"| {r['variant']} | {r.get('precision', '-')} | {r['setup_s']:.1f} | "
                     f"{epoch} | {ev} | "
                     f"{r['peak_rss_gib']:.2f} |")
    lines += [f"- {r['variant']}: {' '.join(r['overrides'])}" for r in rows
              if r.get("overrides")]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
