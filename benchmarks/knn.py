"""Exact vs approximate (faiss HNSW) cosine kNN graphs: time and recall.

The item features of the clustered synthetic generator (image/text/audio, 64/48/32-d; the
same items as benchmarks/scale.py), k = 10 with the item itself. Recall = the share of
the exact graph's edges the approximate graph also has. Each graph is built in this
process with ``--threads`` threads. ``--knn-cache DIR`` loads exact graphs a previous run
(or benchmarks/scale.py) left there; their time is then not measured. Writes
benchmarks/results/knn.{json,md}.

    python benchmarks/knn.py [--items 20000 200000] [--threads 1] [--knn-cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
K = 10


def measure(n_items: int, cache: str | None, only: list[str] | None) -> dict:
    from searec.data import make_synthetic
    from searec.graphs import cached_knn_graph, hnsw_knn_graph, knn_cache_path, knn_graph

    # the item side of the clustered generator does not depend on the users
    ds = make_synthetic(generator="clustered", n_users=1000, n_items=n_items, seed=0)
    row: dict = {"items": n_items, "modalities": {}}
    for m, feats in ds.modalities.items():
        if only and m not in only:
            continue
        cached = cache is not None and knn_cache_path(feats, K, cache).is_file()
        t = time.perf_counter()
        exact = cached_knn_graph(feats, K, cache) if cache else knn_graph(feats, K)
        exact_s = None if cached else time.perf_counter() - t
        t = time.perf_counter()
        approx = hnsw_knn_graph(feats, K)
        hnsw_s = time.perf_counter() - t
        recall = float(exact.multiply(approx).sum() / exact.sum())
        row["modalities"][m] = {"dim": feats.shape[1], "exact_s": exact_s, "hnsw_s": hnsw_s,
                                "recall": recall}
        print(json.dumps({"items": n_items, "modality": m, **row["modalities"][m]}), flush=True)
    return row


def markdown(rows: list[dict], meta: dict) -> str:
    lines = ["# kNN graphs: exact vs HNSW", "",
             f"Cosine kNN, k = {K} (self included), clustered synthetic item features; "
             f"{meta['machine']}, torch {meta['torch']}, faiss {meta['faiss']}, "
             f"{meta['threads']} thread(s). Recall: share of exact edges found.", "",
             "| items | modality | dim | exact (s) | hnsw (s) | speed-up | recall |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        for m, x in r["modalities"].items():
            exact = f"{x['exact_s']:.1f}" if x["exact_s"] is not None else "cached"
            speed = f"{x['exact_s'] / x['hnsw_s']:.1f}x" if x["exact_s"] is not None else "-"
            lines.append(f"| {r['items']:,} | {m} | {x['dim']} | {exact} | {x['hnsw_s']:.1f} | "
                         f"{speed} | {x['recall']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--knn-cache", metavar="DIR")
    ap.add_argument("--modalities", nargs="+", choices=["image", "text", "audio"],
                    help="only these modalities (default: all three)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "torch": torch.__version__, "faiss": faiss.__version__, "threads": args.threads,
            "python": platform.python_version()}
    rows = []
    for n in args.items:
        rows.append(measure(n, args.knn_cache, args.modalities))
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "knn.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=2))
        (RESULTS / "knn.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
