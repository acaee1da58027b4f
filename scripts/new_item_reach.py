"""Do new items reach users? #34's check, for any models on any dataset.

Each model is trained once (its defaults, ``--epochs``), then, in a copy of its run
folder per group, near-copies of existing items are added with ``searec items add``'s
Python twin (``add_items``): the raw features of the group's items plus ``--noise`` x each
feature's spread of Gaussian noise. Groups: the ``--copies`` most-trained items, and as many
random items with training interactions. Counted: the users with at least one copy in
their top k (``recommend``'s list, training items excluded), and the median over users of
the best rank a copy gets (ties counted in the copy's favour).

    python scripts/new_item_reach.py --data ../shared/data/ml100k --out runs/new-item-reach \
        --models sea,vbpr,itemknn --epochs 8 --results docs/results/new-item-reach
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

import searec
from searec.config import load_config
from searec.csr import csr_rows_positions
from searec.data.dataset import Dataset
from searec.inference.items import add_items, load_catalogue
from searec.inference.recommend import recommendation_frame


def near_copies(raw: Dataset, items: np.ndarray, noise: float,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The raw features of ``items`` plus ``noise`` x each feature's standard deviation
    (over the catalogue) of Gaussian noise, per modality."""
    return {m: (f[items] + noise * f.std(0) * rng.standard_normal((len(items), f.shape[1])))
            .astype(np.float32) for m, f in raw.modalities.items()}


def reach(run: Path, features: dict[str, np.ndarray], k: int = 20) -> dict[str, Any]:
    """Add ``features`` as new items to ``run`` (modified in place) and count the users
    with one of them in their top ``k`` (``recommend``'s lists); also the median over
    users of the best rank a new item gets among the items not trained on by the user."""
    n_new = len(next(iter(features.values())))
    ids = [f"new-item-{i}" for i in range(n_new)]
    add_items(run, features, ids=ids, log=lambda _m: None)
    _, extended, model = load_catalogue(run)
    frame = recommendation_frame(model, extended, np.arange(extended.n_users), k=k)
    reached = frame.loc[frame["item_id"].isin(ids), frame.columns[0]].nunique()
    train = sp.csr_matrix(extended.train)
    new = torch.arange(extended.n_items - n_new, extended.n_items)  # added last
    best_ranks = []
    with torch.no_grad():
        for start in range(0, extended.n_users, 1024):
            users = np.arange(start, min(start + 1024, extended.n_users))
            scores = model.score_users(torch.from_numpy(users)).float().cpu()
            scores[csr_rows_positions(train, users, scores.device)] = -torch.inf
            best_new = scores[:, new].max(1).values
            best_ranks.append((scores > best_new[:, None]).sum(1) + 1)
    return {"users": extended.n_users, "reached": int(reached),
            "median_best_rank": float(torch.cat(best_ranks).double().median())}


def train_once(run: Path, data: str, model: str, epochs: int) -> Path:
    if not (run / "metrics.json").is_file():
        searec.train(load_config(None, [f"data.path={data}", "data.cold_users=drop",
                                        "train.progress=false", f"model.name={model}",
                                        f"train.epochs={epochs}"]), run, overwrite=True,
                     log=lambda _m: None)
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--models", default="sea,vbpr,itemknn")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, help="write results.csv and summary.md here")
    args = parser.parse_args(argv)
    rows = []
    for model in args.models.split(","):
        trained = train_once(args.out / model, args.data, model, args.epochs)
        raw = searec.load_dataset(load_config(trained / "config.yaml", []).data)
        degree = np.asarray(raw.train.sum(0)).ravel()
        popular = np.argsort(-degree, kind="stable")[: args.copies]
        others = np.random.default_rng(args.seed).choice(
            np.setdiff1d(np.flatnonzero(degree > 0), popular), args.copies, replace=False)
        for group, items in (("most-trained", popular), ("random", others)):
            run = args.out / f"{model}-{group}"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(trained, run)
            # each group's noise from its own generator: the same copies for every model
            noisy = near_copies(raw, items, args.noise, np.random.default_rng(args.seed))
            result = reach(run, noisy, args.k)
            rows.append({"model": model, "group": group, **result})
            print(rows[-1], file=sys.stderr, flush=True)
    lines = [f"# Near-copies of {args.copies} items added to trained runs ({args.data})", "",
             f"users with a copy in their top {args.k} (of {rows[0]['users']}); median over "
             "users of the best rank a copy gets. Noise: "
             f"{args.noise} x each feature's spread; {args.epochs} epochs; seed {args.seed}.",
             "", "| model | copies of | users reached | median best rank |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['group']} | {r['reached']} | {r['median_best_rank']:g} |"
              for r in rows]
    print("\n".join(lines))
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        with (args.results / "results.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (args.results / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
