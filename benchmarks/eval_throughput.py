"""Full-ranking evaluation vs the bare cost of the score matmul plus top-k.

Amazon-Sports size by default (35,598 users x 18,357 items, 64-d representations, the
real interactions from ../shared/data/interactions_only/sports when present, else random
ones of the same density); ``--users/--items`` instead: random interactions (16 training
and 4 test items per user) at that size, e.g. the scale benchmark's catalogue. searec's
side is a model's ``score_users`` through ``evaluate_ranking``, as training evaluates.
Writes JSON and a markdown table to benchmarks/results/<name>.{json,md}.

    python benchmarks/eval_throughput.py [--repeats 5] [--batch 4096] [--threads N]
        [--users 20000 --items 200000 --dim 384] [--name eval_throughput]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from searec.evaluation import evaluate_ranking

ROOT = Path(__file__).resolve().parents[1]
SPORTS = ROOT.parent / "shared" / "data" / "interactions_only" / "sports"


def load_splits() -> tuple[sp.csr_matrix, sp.csr_matrix, str]:
    if SPORTS.is_dir():
        from searec.data import load_mmrec

        ds = load_mmrec(SPORTS)
        return ds.train, ds.test, "Amazon Sports (real interactions)"
    rng = np.random.default_rng(0)
    n_u, n_i = 35_598, 18_357
    train = sp.random(n_u, n_i, density=218_409 / (n_u * n_i), random_state=1, format="csr")
    test = sp.random(n_u, n_i, density=40_029 / (n_u * n_i), random_state=2, format="csr")
    test = (test - test.multiply(train)).tocsr()
    train.data[:] = 1
    test.data[:] = 1
    del rng
    return train, test, "random, Amazon Sports size"


def random_splits(n_users: int, n_items: int) -> tuple[sp.csr_matrix, sp.csr_matrix, str]:
    """16 training and 4 test items per user, uniformly at random (test minus train)."""
    from searec.data.dataset import interaction_matrix

    rng = np.random.default_rng(0)

    def draw(per_user: int) -> sp.csr_matrix:
        rows = np.repeat(np.arange(n_users), per_user)
        return interaction_matrix(rows, rng.integers(0, n_items, len(rows)), n_users, n_items)

    train, test = draw(16), draw(4)
    test = (test - test.multiply(train)).tocsr()
    test.eliminate_zeros()
    return train, test, "random (16 training, 4 test items per user)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--users", type=int, help="random interactions for this many users")
    ap.add_argument("--items", type=int, default=200_000, help="with --users: items")
    ap.add_argument("--name", default="eval_throughput")
    ap.add_argument("--note", default="", help="code version, what else ran meanwhile")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, test, source = (random_splits(args.users, args.items) if args.users
                           else load_splits())
    n_users, n_items = train.shape
    gen = torch.Generator().manual_seed(0)
    users_rep = torch.randn(n_users, args.dim, generator=gen)
    items_rep = torch.randn(n_items, args.dim, generator=gen)
    eval_users = torch.from_numpy(np.flatnonzero(np.diff(test.indptr) > 0))

    def bare() -> None:
        for s in range(0, len(eval_users), args.batch):
            # one expression: each batch's scores are freed before the next is allocated
            torch.topk(users_rep[eval_users[s : s + args.batch]] @ items_rep.T, 50, dim=1)

    from searec.models import get_model_class

    model = get_model_class("bpr")(n_users, n_items)
    model.use_representations(users_rep, items_rep)

    def full() -> None:
        evaluate_ranking(model.score_users, test, [train], [10, 20, 50],
                         batch_size=args.batch)

    times: dict[str, list[float]] = {"bare": [], "searec": []}
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        for name, fn in (("bare", bare), ("searec", full)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "source": source,
        "users_evaluated": len(eval_users),
        "items": n_items,
        "dim": args.dim,
        "batch_users": args.batch,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "seconds": {k: {"min": min(v), "median": med[k], "runs": v} for k, v in times.items()},
        "ratio_median": med["searec"] / med["bare"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "note": args.note,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Full-ranking evaluation vs bare matmul + top-k",
        "",
        f"{source}: {len(eval_users):,} users x {n_items:,} items, {args.dim}-d, batches of "
        f"{args.batch} users, {result['threads']} threads, torch {torch.__version__}, "
        f"{args.repeats} interleaved repeats.",
        "",
        "| what | min s | median s |",
        "|---|---|---|",
        f"| bare: scores + top-50 | {min(times['bare']):.3f} | {med['bare']:.3f} |",
        f"| searec evaluate_ranking (mask, tie-exact top-k, 15 metrics) | "
        f"{min(times['searec']):.3f} | {med['searec']:.3f} |",
        "",
        f"Ratio (median): {result['ratio_median']:.2f}x. Peak RSS of the process: "
        f"{result['peak_rss_mb']:.0f} MB." + (f" {args.note}" if args.note else ""),
    ]
    (out / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
