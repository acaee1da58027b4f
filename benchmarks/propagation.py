"""Propagation over the user-item graph: one product per modality vs all modalities at once.

SEA propagates M modality embeddings (each users+items x d) over the same normalised
user-item graph. Per layer this is either M sparse products with d columns (what searec
does) or one with M*d columns (the modalities side by side). Both give the same values;
this times forward + backward of ``n_layers`` layers both ways, in turn, in one process,
on clustered synthetic interactions. Writes benchmarks/results/propagation.{json,md}.

    python benchmarks/propagation.py [--interactions 1e6 5e6] [--items 200000]
        [--modalities 3] [--dim 64] [--layers 2] [--repeats 5] [--threads 1]
        [--cpu-memory reuse|release]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def time_both(n_interactions: float, args: argparse.Namespace) -> dict:
    from searec.data import make_synthetic
    from searec.graphs import InteractionGraph, propagated_sum

    n_users = max(1000, round(n_interactions / 20))
    ds = make_synthetic(generator="clustered", n_users=n_users, n_items=args.items,
                        interactions_per_user=20, seed=0)
    adj = InteractionGraph.from_train(ds.train).norm_adj
    n = adj.shape[0]
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(n, args.dim, generator=gen) for _ in range(args.modalities)]
    grads = [torch.randn(n, args.dim, generator=gen) for _ in range(args.modalities)]
    joint_grad = torch.cat(grads, 1)

    def separate() -> list[torch.Tensor]:
        leaves = [x.clone().requires_grad_() for x in xs]
        outs = [propagated_sum(adj, x, args.layers) for x in leaves]
        torch.autograd.backward(outs, grads)
        return [x.grad for x in leaves]  # type: ignore[misc]

    def joint() -> list[torch.Tensor]:
        leaves = [x.clone().requires_grad_() for x in xs]
        out = propagated_sum(adj, torch.cat(leaves, 1), args.layers)
        out.backward(joint_grad)
        return [x.grad for x in leaves]  # type: ignore[misc]

    # same gradients both ways, or the timing compares different work
    for a, b in zip(separate(), joint(), strict=True):
        torch.testing.assert_close(a, b)
    samples: dict[str, list[float]] = {"per_modality": [], "side_by_side": []}
    for _ in range(args.repeats):
        for name, fn in (("per_modality", separate), ("side_by_side", joint)):
            t = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t)
    row = {"interactions": ds.stats()["interactions"], "nodes": n, "nnz": adj.nnz}
    for name, v in samples.items():
        row[name] = {"median_s": statistics.median(v), "min_s": min(v), "samples_s": v}
    row["ratio_median"] = row["side_by_side"]["median_s"] / row["per_modality"]["median_s"]
    row["ratio_min"] = row["side_by_side"]["min_s"] / row["per_modality"]["min_s"]
    return row


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Propagation: per modality vs side by side", "",
        f"{meta['modalities']} modalities x {meta['dim']} columns, {meta['layers']} layers, "
        f"forward + backward, {meta['items']:,} items, clustered synthetic interactions. "
        f"{meta['machine']}; torch {meta['torch']}, {meta['threads']} thread(s), "
        f"cpu_memory={meta['cpu_memory']}; "
        f"{meta['repeats']} repeats each, in turn.", "",
        "| interactions | graph non-zeros | per modality (s, median / min) | side by side "
        "(s, median / min) | ratio (median) | ratio (min) |",
        "|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["per_modality"], r["side_by_side"]
        lines.append(f"| {r['interactions']:,} | {r['nnz']:,} | {a['median_s']:.2f} / "
                     f"{a['min_s']:.2f} | {b['median_s']:.2f} / {b['min_s']:.2f} | "
                     f"{r['ratio_median']:.2f} | {r['ratio_min']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interactions", type=float, nargs="+", default=[1e6, 5e6])
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--modalities", type=int, default=3)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cpu-memory", choices=["reuse", "release"], default="reuse",
                    help="train.cpu_memory's setting for this process")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.cpu_memory == "reuse":  # as `searec train` does on CPU by default
        from searec.training.memory import keep_freed_memory

        keep_freed_memory()
    meta = {"modalities": args.modalities, "dim": args.dim, "layers": args.layers,
            "items": args.items, "repeats": args.repeats, "threads": args.threads,
            "cpu_memory": args.cpu_memory,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "torch": torch.__version__}
    rows = []
    for n in args.interactions:
        rows.append(time_both(n, args))
        print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "propagation.json").write_text(json.dumps({"meta": meta, "runs": rows},
                                                         indent=2))
    (RESULTS / "propagation.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
