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

from searec.io import read_csv_rows


def summary(run: Path) -> dict[str, float | str]:
    metrics = json.loads((run / "metrics.json").read_text())
    rows = [r for r in read_csv_rows(run / "history.csv")
            if int(r["epoch"]) <= metrics["best_epoch"]]
    out: dict[str, float | str] = {"run": str(run), "valid_recall@20":
                                   metrics["valid"]["recall@20"],
                                   "test_recall@20": metrics["test"]["recall@20"]}
    for col in (c for c in rows[0] if c.startswith("term_")):
        values = [float(r[col]) for r in rows if r.get(col) not in (None, "")]
        out[col[5:]] = sum(values) / len(values)
    diag = run / "diagnostics.json"
    if diag.is_file():
        for key, est in json.loads(diag.read_text()).get("heldout_mi", {}).items():
            for name, value in est.items():
                out[f"heldout_{name}_{key}"] = value["mean"]
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
