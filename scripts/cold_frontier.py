"""What showing cold items costs the warm ones: the reserved-slot frontier of the finished
runs of a cold-start experiment (experiments/cold-start-*.yaml).

For each run (its best checkpoint, with its cold-item path) and each number of slots m,
every user's top-k list is made of the top k - m warm items and the top m cold items, each
part ranked by the run's own scores (training items, and on test the validation items,
excluded as the evaluator does). Measured per split: recall@k over all, warm and cold items
(the evaluator's three views; m = 0 is the run without cold items), and the hit rate of
each rank of the two rankings: how often the j-th best cold item is relevant, against the
k-th best warm item it would displace. The calibrated score merge the run was fitted with
(metrics.json) is one point to set beside the curve: no calibration of the same two
rankings can show cold items without displacing warm ones.

    python scripts/cold_frontier.py runs/cold-start-ml100k --variant sea \
        --out docs/results/cold-frontier-ml100k

Rows go to OUT/results.csv, the mean over seeds to OUT/summary.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from searec.csr import csr_rows_mask, csr_rows_positions, users_per_batch
from searec.data.dataset import Dataset
from searec.evaluation.stats import mean_std
from searec.runs import load_run
from searec.scores import ScoreBuffer
from searec.topk import topk_stable

SPLITS = ("valid", "test")


def slot_frontier(score_users: Any, dataset: Dataset, split: str, k: int, max_slots: int,
                  mask_valid_in_test: bool = True, batch_size: int = 1024,
                  device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """Per number of slots m = 0..max_slots, mean recall@k over all, warm and cold items
    ({"all", "warm", "cold"}: arrays of max_slots + 1), each user's list being the top
    k - m warm and top m cold items by ``score_users``; and the hit rate of each rank of
    the warm and of the cold ranking ({"warm_rank", "cold_rank"}: arrays of k, over the
    users with a relevant item of that kind). Cold items: those without training
    interactions. Users counted per view as evaluate_ranking counts them: those with a
    relevant item in it. Scores are written into one reused buffer on ``device``, as
    evaluate_ranking does (searec.scores.ScoreBuffer)."""
    if not 0 <= max_slots <= k:
        raise ValueError(f"max_slots must be between 0 and k ({k}), got {max_slots}")
    target = sp.csr_matrix(dataset.valid if split == "valid" else dataset.test)
    exclude = [sp.csr_matrix(dataset.train)]
    if split == "test" and mask_valid_in_test:
        exclude.append(sp.csr_matrix(dataset.valid))
    n_items = dataset.n_items
    # cold: every item without training interactions, as the cold-item path represents
    # them (the evaluator's cold view counts the same relevant items)
    is_cold = np.diff(sp.csc_matrix(dataset.train).indptr) == 0
    cold = np.flatnonzero(is_cold)
    n_cold = np.asarray(target[:, cold].sum(1)).ravel()
    n_all = np.diff(target.indptr)
    n_warm = n_all - n_cold
    users = np.flatnonzero(n_all > 0)
    slots = range(max_slots + 1)
    sums = {view: np.zeros(max_slots + 1) for view in ("all", "warm", "cold")}
    rank_hits = {"warm_rank": np.zeros(k), "cold_rank": np.zeros(k)}
    cold_t = torch.from_numpy(is_cold)
    batch_size = users_per_batch(batch_size, n_items)
    device = torch.device(device)
    score_batch = ScoreBuffer(score_users, n_items, device)
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = score_batch(torch.from_numpy(batch).to(device))
        for mat in exclude:
            scores[csr_rows_positions(mat, batch, scores.device)] = -torch.inf
        relevant = csr_rows_mask([target], batch, n_items, scores.device).cpu()
        scores = scores.cpu()
        warm_top = topk_stable(scores.masked_fill(cold_t, -torch.inf), k)[1]
        cold_top = topk_stable(scores.masked_fill(~cold_t, -torch.inf), min(k, len(cold)))[1]
        warm_hits = relevant.gather(1, warm_top).double()
        cold_hits = relevant.gather(1, cold_top).double()
        # an excluded item (score -inf) can fill a short ranking's tail: never a hit
        warm_hits *= scores.gather(1, warm_top) > -torch.inf
        cold_hits *= scores.gather(1, cold_top) > -torch.inf
        nw, nc, na = (torch.from_numpy(n[batch]).double() for n in (n_warm, n_cold, n_all))
        rank_hits["warm_rank"] += warm_hits[nw > 0].sum(0).numpy()
        rank_hits["cold_rank"][: cold_hits.shape[1]] += cold_hits[nc > 0].sum(0).numpy()
        for m in slots:
            got_warm = warm_hits[:, : k - m].sum(1)
            got_cold = cold_hits[:, :m].sum(1)
            sums["warm"][m] += float((got_warm[nw > 0] / nw[nw > 0]).sum())
            sums["cold"][m] += float((got_cold[nc > 0] / nc[nc > 0]).sum())
            sums["all"][m] += float(((got_warm + got_cold) / na).sum())
    counts = {"all": len(users), "warm": int((n_warm[users] > 0).sum()),
              "cold": int((n_cold[users] > 0).sum())}
    out = {view: total / max(counts[view], 1) for view, total in sums.items()}
    out["warm_rank"] = rank_hits["warm_rank"] / max(counts["warm"], 1)
    out["cold_rank"] = rank_hits["cold_rank"] / max(counts["cold"], 1)
    return out


def run_rows(run: Path, k: int, max_slots: int) -> list[dict[str, Any]]:
    cfg, dataset, model = load_run(run)
    metrics = json.loads((run / "metrics.json").read_text())
    seed = int(run.name.removeprefix("seed"))
    rows = []
    with torch.no_grad():
        for split in SPLITS:
            result = slot_frontier(model.score_users, dataset, split, k, max_slots,
                                   cfg.eval.mask_valid_in_test)
            for m in range(max_slots + 1):
                rows.append({"dataset": run.parent.parent.name, "variant": run.parent.name,
                             "seed": seed, "split": split, "slots": m,
                             "all": result["all"][m], "warm": result["warm"][m],
                             "cold": result["cold"][m],
                             "warm_hit_rate_at_rank": result["warm_rank"][k - m]
                             if 0 < m <= k else "",
                             "cold_hit_rate_at_rank": result["cold_rank"][m - 1]
                             if m else ""})
    path_point = {"all": metrics.get("test", {}).get(f"recall@{k}"),
                  "warm": metrics.get("test_warm", {}).get(f"recall@{k}"),
                  "cold": (metrics.get("test_cold") or {}).get(f"recall@{k}")}
    rows.append({"dataset": run.parent.parent.name, "variant": run.parent.name,
                 "seed": seed, "split": "test", "slots": "path", **path_point,
                 "warm_hit_rate_at_rank": "", "cold_hit_rate_at_rank": ""})
    return rows


def summary(rows: list[dict[str, Any]], k: int) -> str:
    lines = [f"# Reserved-slot frontier, recall@{k} (mean ± std over seeds)", "",
             "slots m: each user's list is the top k - m warm and top m cold items. "
             "warm change: against m = 0. hit rates: of the m-th cold item, and of the "
             "warm item at rank k - m + 1 that it displaces (so for m = 1: the k-th). "
             "path: the calibrated score merge of the run (test).", ""]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["variant"], row["split"]), []).append(row)
    for (dataset, variant, split), group in sorted(groups.items()):
        lines += [f"## {dataset} / {variant} / {split}", "",
                  "| slots | seeds | all | warm | warm change | cold | hit rate, m-th cold "
                  "| hit rate, displaced warm |", "|---|---|---|---|---|---|---|---|"]
        by_slots: dict[str, list[dict[str, Any]]] = {}
        for row in group:
            by_slots.setdefault(str(row["slots"]), []).append(row)
        base = {int(r["seed"]): float(r["warm"]) for r in by_slots.get("0", [])}
        for slots, members in by_slots.items():
            def cell(key: str, members: list[dict[str, Any]] = members) -> str:
                values = [float(r[key]) for r in members if r[key] not in ("", None)]
                if not values:
                    return "-"
                mean, std = mean_std(values)
                return f"{mean:.4f} ± {std:.4f}"
            change = [float(r["warm"]) / base[int(r["seed"])] - 1 for r in members
                      if int(r["seed"]) in base and base[int(r["seed"])] > 0]
            change_cell = (f"{100 * np.mean(change):+.1f}%" if change else "-")
            lines.append(f"| {slots} | {len(members)} | {cell('all')} | {cell('warm')} | "
                         f"{change_cell} | {cell('cold')} | {cell('cold_hit_rate_at_rank')} "
                         f"| {cell('warm_hit_rate_at_rank')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="an experiment's --out folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant", action="append", help="only these variants")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--max-slots", type=int, default=5)
    args = parser.parse_args(argv)
    runs = sorted(p.parent for p in args.folder.glob("runs/*/*/seed*/metrics.json"))
    runs = [r for r in runs if not args.variant or r.parent.name in args.variant]
    if not runs:
        sys.exit(f"{args.folder}: no finished run (runs/*/*/seed*/metrics.json)")
    rows: list[dict[str, Any]] = []
    for run in runs:
        print(run, file=sys.stderr, flush=True)
        rows += run_rows(run, args.k, args.max_slots)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "summary.md").write_text(summary(rows, args.k) + "\n")
    print((args.out / "summary.md").read_text())


if __name__ == "__main__":
    main()
