"""Latency and throughput of `searec serve`: top-20 per user over loopback HTTP.

    python benchmarks/serve_latency.py --run runs/tiktok-sea [--synthetic-items 200000]
        [--requests 400] [--clients 1 32] [--name serve_latency]

For each catalogue (a trained run given with --run; with --synthetic-items, also a
LightGCN run trained for one epoch on the clustered synthetic generator with that many
items, 128-d, made once under --work) and each top-k mode (exact; approximate: faiss HNSW,
`searec serve --approximate`), a real `searec serve` process is started on a free
loopback port, and 1 and 32 concurrent clients send a bounded number of
GET /users/{user}/recommendations?k=20 requests for random users. Reported: p50 / p99
latency per request and throughput (requests / wall second); the recall@20 of the
approximate top-20 against the exact one (500 users); and the in-process cost of the
same answer without HTTP: one user's score vector over the catalogue plus its top-20
(training items masked), median of 200. Writes benchmarks/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def synthetic_run(work: Path, n_items: int) -> Path:
    """A LightGCN run (1 epoch, 128-d) on the clustered generator with ``n_items`` items."""
    import searec
    from searec.config import load_config

    run = work / f"lightgcn-{n_items}"
    if (run / "metrics.json").is_file():
        return run
    users = max(1000, n_items // 4)
    cfg = load_config(None, [
        "model.name=lightgcn", "model.embedding_dim=128", "train.epochs=1",
        "train.progress=false", "data.synthetic.generator=clustered",
        f"data.synthetic.n_items={n_items}", f"data.synthetic.n_users={users}",
        "data.synthetic.interactions_per_user=20", "eval.topk=[20]"])
    searec.train(cfg, run, overwrite=True, log=lambda _m: None)
    return run


def start(run: Path, port: int, approximate: bool) -> subprocess.Popen:
    from searec.inference.serving.process import spawn_server

    options = ["--log-level", "warning", "--max-batch", "100000"]
    return spawn_server(run, port, options + (["--approximate"] if approximate else []),
                        timeout=1800)


def load(base: str, users: list[str], clients: int, requests: int) -> dict:
    """``requests`` GETs split over ``clients`` threads, each with its own connection."""
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    per_client = requests // clients

    def worker(offset: int) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=base, timeout=120) as client:
            for n in range(per_client):
                user = users[(offset * per_client + n) % len(users)]
                t0 = time.perf_counter()
                reply = client.get(f"/users/{user}/recommendations", params={"k": 20})
                mine.append(time.perf_counter() - t0)
                reply.raise_for_status()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.asarray(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "p50_ms": float(np.median(ms)),
            "p99_ms": float(np.percentile(ms, 99)), "throughput_rps": len(latencies) / wall}


def in_process(run: Path, sample_users: np.ndarray) -> dict:
    """Bare cost of one user's scores and top-20, and the approximate top-20's recall."""
    import torch

    from searec.csr import csr_rows_positions
    from searec.inference.serving import RunService
    from searec.topk import topk_stable

    exact = RunService(run)
    times = []
    for user in sample_users[:200]:
        t0 = time.perf_counter()
        batch = np.asarray([user])
        scores = exact.user_rep[torch.from_numpy(batch)] @ exact.item_rep.T
        scores[csr_rows_positions(exact.dataset.train, batch)] = -torch.inf
        topk_stable(scores, 20)
        times.append(time.perf_counter() - t0)
    ids = exact.user_ids(sample_users[:500])
    approx = RunService(run, approximate=True)
    hits = [len(set(a["items"]) & set(e["items"])) / 20 for a, e in
            zip(approx.recommend(ids, 20), exact.recommend(ids, 20), strict=True)]
    return {"items": exact.dataset.n_items, "dim": int(exact.item_rep.shape[1]),
            "score_and_top20_ms": statistics.median(times) * 1000,
            "approximate_recall_at_20": float(np.mean(hits)), "user_ids": ids}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, action="append", default=[],
                    help="a trained run to serve (repeatable)")
    ap.add_argument("--synthetic-items", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("runs/serve-latency"))
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--name", default="serve_latency")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = ap.parse_args()
    import httpx
    import torch

    runs = list(args.run)
    if args.synthetic_items:
        runs.append(synthetic_run(args.work, args.synthetic_items))
    rows = []
    rng = np.random.default_rng(0)
    for run in runs:
        from searec.runs import load_run

        _, dataset, _ = load_run(run)
        sample = rng.choice(dataset.n_users, size=min(1000, dataset.n_users), replace=False)
        bare = in_process(run, sample)
        users = bare.pop("user_ids")
        for approximate in (False, True):
            from searec.inference.serving.process import free_port, stop_server

            port = free_port()
            proc = start(run, port, approximate)
            try:
                for clients in args.clients:
                    row = {"run": str(run), **bare,
                           "top_k": "approximate" if approximate else "exact",
                           **load(f"http://127.0.0.1:{port}", [str(u) for u in users],
                                  clients, args.requests)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                stop_server(proc)
    meta = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "httpx": httpx.__version__, "server": "one searec serve (uvicorn) process, "
            "torch's default threads", "note": args.note}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"meta": meta, "rows": rows},
                                                          indent=1) + "\n")
    lines = ["# `searec serve` latency, top-20 per user over loopback", "",
             f"{meta['cpus']} CPUs ({meta['processor']}), torch {meta['torch']}; "
             f"{args.requests} requests per row; in-process: one user's scores + top-20, "
             "median of 200." + (f" {args.note}" if args.note else ""), "",
             "| catalogue | top-k | clients | p50 ms | p99 ms | requests/s | in-process ms | "
             "approx. recall@20 |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['items']:,} items, {r['dim']}-d | {r['top_k']} | {r['clients']} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['throughput_rps']:.0f} | "
                     f"{r['score_and_top20_ms']:.2f} | {r['approximate_recall_at_20']:.3f} |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
