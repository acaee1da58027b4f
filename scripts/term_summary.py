"""Per run folder: what each separation term did, averaged over the epochs up to the best.

    python scripts/term_summary.py RUN_DIR [RUN_DIR ...]

Prints one Markdown row per run: valid/test recall@20 at the best epoch, and the means of
history.csv's term_* columns (gradient shares, clamped shares, q's NLL excess) over epochs
1..best_epoch, plus the held-out MI of diagnostics.json when `searec diagnose` has run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from searec.experiments.grid import separation_summary


def summary(run: Path) -> dict[str, float | str]:
    metrics = json.loads((run / "metrics.json").read_text())
    out: dict[str, float | str] = {"run": str(run), "valid_recall@20":
                                   metrics["valid"]["recall@20"],
                                   "test_recall@20": metrics["test"]["recall@20"]}
    for key, value in separation_summary(run, metrics["best_epoch"]).items():
        out[key[5:] if key.startswith("term_") else key] = value
    return out


def main(argv: list[str]) -> None:
    rows = [summary(Path(a)) for a in argv]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.4f}" if isinstance(r.get(k), float) else
                                str(r.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
