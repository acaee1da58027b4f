"""Add ``test_cold_catalogue`` (the cold items ranked among themselves) to the metrics.json
of finished runs trained before searec reported it; runs that have it are left alone.

    python scripts/backfill_cold_catalogue.py runs/cold-tiktok/runs/tiktok/*/seed*

The value is what training now writes (searec.training.Trainer.warm_and_cold_metrics):
the best checkpoint, test split, only held-out interactions with cold items counted, only
cold items ranked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from searec.graphs import InteractionGraph
from searec.io import write_json
from searec.runs import load_run
from searec.training.trainer import evaluate_model


def backfill(run: Path) -> str:
    path = run / "metrics.json"
    metrics = json.loads(path.read_text())
    if "test_cold_catalogue" in metrics or not metrics.get("test_cold"):
        return "left as it is"
    cfg, dataset, model = load_run(run)
    cold = dataset.cold_items()
    among = evaluate_model(model, InteractionGraph.from_train(dataset.train), dataset, "test",
                           cfg.eval, items=cold, rank_only_items=True)
    metrics["test_cold_catalogue"] = {k: v for k, v in among.items() if k != "users"}
    write_json(path, metrics)
    return f"cold recall@20 among cold items {among['recall@20']:.4f}"


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(arg, backfill(Path(arg)), flush=True)
