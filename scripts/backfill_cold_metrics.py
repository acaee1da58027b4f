"""Add the cold-start sections training now writes (test_warm, test_cold,
test_cold_catalogue: searec.evaluation.warm_and_cold_metrics) to the metrics.json of
finished runs trained before searec reported them; sections a run has are left alone.

    python scripts/backfill_cold_metrics.py runs/cold-tiktok/runs/tiktok/*/seed*

The values are computed as training computes them: the best checkpoint, the test split,
only held-out interactions with warm (or cold) items counted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from searec.evaluation import warm_and_cold_metrics
from searec.graphs import InteractionGraph
from searec.io import write_json
from searec.runs import load_run


def backfill(run: Path) -> str:
    path = run / "metrics.json"
    metrics = json.loads(path.read_text())
    if "test_warm" in metrics and ("test_cold_catalogue" in metrics
                                   or not metrics.get("test_cold")):
        return "left as it is"
    cfg, dataset, model = load_run(run)
    sections = warm_and_cold_metrics(model, InteractionGraph.from_train(dataset.train),
                                     dataset, cfg.eval, log=lambda _: None)
    added = {k: v for k, v in sections.items() if k not in metrics}
    if not added:
        return "no cold items in its test split"
    write_json(path, {**metrics, **added})
    return "added " + ", ".join(sorted(added))


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(arg, backfill(Path(arg)), flush=True)
