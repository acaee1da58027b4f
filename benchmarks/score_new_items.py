"""Cost of representing items known only by their features (POST /items/score, searec
items add): the fitted cold-item mapper against rebuilding the model over the extended
catalogue (the path without a mapper), in one process, on one trained run.

    python benchmarks/score_new_items.py --run RUN [--items 1 5 50] [--repeats 5]
        [--threads 1] [--name score_new_items]

RUN must have a fitted mapper (model.cold_start.method=mapper; searec items cold-path
fits one after training). For each batch of new items (feature rows of random trained
items) the in-process RunService.score_items call (2 users) is timed with the mapper and
with the same run's state stripped of it (so the model is rebuilt over the extended
catalogue, kNN graphs included, as without the path). Also checked: the mapper's
representation of an item is the same alone as in a batch (largest difference).
Writes benchmarks/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _time(call, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--items", type=int, nargs="+", default=[1, 5, 50])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="score_new_items")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import searec
    from searec.inference.serving import RunService

    service = RunService(args.run)
    if not any(k.startswith("cold_mapper.") for k in service.trained_state):
        raise SystemExit(f"{args.run}: no fitted cold-item mapper (searec items cold-path "
                         "--run RUN model.cold_start.method=mapper)")
    dataset = service.trained_dataset
    users = service.user_ids(np.arange(2))
    rng = np.random.default_rng(0)
    with_mapper = dict(service.trained_state)
    without = {k: v for k, v in with_mapper.items() if not k.startswith("cold_mapper.")}
    rows = []
    for n in args.items:
        picked = rng.choice(dataset.n_items, n, replace=False)
        feats = {m: f[picked].tolist() for m, f in dataset.modalities.items()}
        timings = {}
        for label, state in (("mapper", with_mapper), ("rebuild", without)):
            service.trained_state = state
            service.score_items(feats, users)  # warm-up
            timings[label] = _time(partial(service.score_items, feats, users), args.repeats)
        service.trained_state = with_mapper
        batch = service.score_items(feats, users)
        alone = [service.score_items({m: [v[i]] for m, v in feats.items()}, users)
                 for i in range(min(n, 5))]
        spread = max(abs(a[u]["scores"][0] - batch[u]["scores"][i])
                     for i, a in enumerate(alone) for u in range(len(users)))
        rows.append({"new_items": n,
                     **{f"{label}_s_{stat}": round(fn(ts), 5) for label, ts in timings.items()
                        for stat, fn in (("min", min), ("median", statistics.median))},
                     "speedup_min": round(min(timings["rebuild"]) / min(timings["mapper"]), 1),
                     "alone_vs_batch_max_abs_diff": spread})
    result = {"run": args.run.name, "model": service.config.model.name,
              "dataset": dataset.name, "items": dataset.n_items, "users": dataset.n_users,
              "threads": args.threads, "repeats": args.repeats, "note": args.note,
              "rows": rows,
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "torch": torch.__version__, "searec": searec.__version__}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Representing new items: mapper vs rebuild ({result['model']} on "
             f"{result['dataset']}, {result['items']} items, {args.threads} thread(s))", "",
             f"`python benchmarks/score_new_items.py --run RUN --repeats {args.repeats} "
             f"--threads {args.threads}`; in-process RunService.score_items, 2 users; "
             f"min / median of {args.repeats}." + (f" {args.note}" if args.note else ""), "",
             "| new items | mapper (s) | rebuild (s) | rebuild / mapper (min) | "
             "alone vs batch, max abs score diff |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['new_items']} | {r['mapper_s_min']} / {r['mapper_s_median']} | "
                     f"{r['rebuild_s_min']} / {r['rebuild_s_median']} | {r['speedup_min']}x | "
                     f"{r['alone_vs_batch_max_abs_diff']:.2e} |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
