"""What every model, plug-in and estimator computes, for refactors that must not change it.

    python scripts/behaviour_snapshot.py --out snapshot.json [--data ../shared/data/tiktok]
        [--epochs 3] [--jobs 2] [--only sea lgmrec+sea]
    python scripts/behaviour_snapshot.py --compare before.json after.json

Trains each variant (every registered model; each multimodal backbone with
``--separation sea``; SEA with each other registered alignment and distancing estimator)
for ``--epochs`` epochs on one dataset, one thread per run, seed 1, and records its
history.csv rows and metrics.json without the timing columns: the loss parts and
validation metrics of every epoch, the final valid and test metrics. ``--compare`` lists
every value that differs between two snapshots (exit status 1 if any does); identical
snapshots mean the refactor changed nothing a run computes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

TIMING = ("seconds",)  # columns and keys whose value is wall time


def variants() -> dict[str, list[str]]:
    """Variant name -> config overrides."""
    from searec.models import registry
    from searec.models.multimodal import MultimodalRecommender, SeparableParams
    from searec.separation import alignment_registry, distancing_registry

    out: dict[str, list[str]] = {}
    for name, cls in sorted(registry().items()):
        out[name] = [f"model.name={name}"]
        if issubclass(cls, MultimodalRecommender) and issubclass(cls.Params, SeparableParams) \
                and name != "sea":
            out[f"{name}+sea"] = [f"model.name={name}", "model.separation={}"]
    for estimator in sorted(alignment_registry()):
        if estimator != "solosim":  # SEA's default
            out[f"sea/alignment={estimator}"] = ["model.name=sea",
                                                 f"model.separation.alignment={estimator}"]
    for estimator in sorted(distancing_registry()):
        if estimator != "club":
            out[f"sea/distancing={estimator}"] = ["model.name=sea",
                                                  f"model.separation.distancing={estimator}"]
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not any(t in k for t in TIMING)}
    return value


def run_variant(data: str, epochs: int, overrides: list[str]) -> dict[str, Any]:
    import torch

    import searec
    from searec.config import load_config
    from searec.io import read_csv_rows

    torch.set_num_threads(1)
    cfg = load_config(None, [f"data.path={data}", f"train.epochs={epochs}", "train.seed=1",
                             "train.threads=1", "train.progress=false",
                             "data.cold_users=drop", *overrides])
    with tempfile.TemporaryDirectory() as tmp:
        metrics = searec.train(cfg, Path(tmp) / "run", log=lambda _m: None)
        history = read_csv_rows(Path(tmp) / "run" / "history.csv")
    return {"overrides": overrides, "history": [_clean(row) for row in history],
            "metrics": _clean(metrics)}


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Every difference between two snapshots, as readable lines."""
    lines = []
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            lines.append(f"{name}: only in {'after' if name in after else 'before'}")
            continue

        def walk(a: Any, b: Any, where: str, name: str = name) -> None:
            if isinstance(a, dict) and isinstance(b, dict):
                for k in sorted(set(a) | set(b), key=str):
                    walk(a.get(k), b.get(k), f"{where}.{k}")
            elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    walk(x, y, f"{where}[{i}]")
            elif a != b:
                lines.append(f"{name}{where}: {a!r} -> {b!r}")

        walk(before[name]["history"], after[name]["history"], ".history")
        walk(before[name]["metrics"], after[name]["metrics"], ".metrics")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" /
                                          "data" / "tiktok"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", nargs="+", help="variant names (default: all)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text())["variants"] for p in args.compare)
        lines = compare(before, after)
        print("\n".join(lines) if lines else f"identical: {len(before)} variants")
        return 1 if lines else 0
    if args.out is None:
        ap.error("--out is required (or --compare)")
    todo = variants()
    if args.only:
        unknown = sorted(set(args.only) - set(todo))
        if unknown:
            ap.error(f"unknown variants {unknown}; known: {sorted(todo)}")
        todo = {k: todo[k] for k in args.only}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {name: pool.submit(run_variant, args.data, args.epochs, overrides)
                   for name, overrides in todo.items()}
        results = {}
        for name, future in futures.items():
            results[name] = future.result()
            print(f"{name}: valid {results[name]['metrics']['valid'].get('recall@20')}",
                  flush=True)
    args.out.write_text(json.dumps({"data": args.data, "epochs": args.epochs,
                                    "variants": results}, indent=1) + "\n")
    print(f"wrote {args.out} ({len(results)} variants)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
