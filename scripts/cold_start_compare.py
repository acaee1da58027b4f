"""Compare cold-item path settings on the finished runs of a cold-start experiment
(experiments/cold-start-*.yaml), without retraining: each run's path is refitted with
each setting (searec items cold-path) and its metrics recorded; the run is left with the
last setting. Rows go to OUT/results.csv (resumable: rows already there are skipped),
the table to OUT/summary.md.

    python scripts/cold_start_compare.py runs/cold-start-tiktok --out docs/results/cold-start-tiktok

Settings: "none" is the run without the path (metrics.json without_cold_path, the same
trained model); "all" and "cold" refit the mapper with calibrate_for=all and =cold
(max_warm_loss 0.02). Models without features (itemknn) give one row, "-". Other
settings: --setting NAME=KEY=VALUE[,KEY=VALUE...] (model.cold_start keys), e.g.

    --setting rank1=model.cold_start.rank_weight=1
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from searec.evaluation.stats import mean_std, paired_test
from searec.models.cold import ColdStartParams
from searec.runs import refit_cold_path

# every refit starts from every model.cold_start default (method: mapper), so that a
# setting never inherits the keys of the one refitted before it
DEFAULTS = [f"model.cold_start.{key}={json.dumps(field.default)}"
            for key, field in ColdStartParams.model_fields.items()]
SETTINGS = {"all": ["model.cold_start.calibrate_for=all"], "cold": []}
VIEWS = (("all", "test"), ("warm", "test_warm"), ("cold", "test_cold"),
         ("cold among cold", "test_cold_catalogue"))
METRIC = "recall@20"


def _row(metrics: dict[str, Any], run: Path, setting: str) -> dict[str, Any]:
    variant, seed = run.parent.name, run.name.removeprefix("seed")
    row: dict[str, Any] = {"dataset": run.parent.parent.name, "variant": variant,
                           "seed": int(seed), "setting": setting}
    for split in ("valid", "valid_cold", *(v for _, v in VIEWS)):
        for name, value in (metrics.get(split) or {}).items():
            row[f"{split}_{name}"] = value
    report = metrics.get("cold_start") or {}
    row["anchor_scale"] = report.get("anchor_scale", "")
    row["spread_scale"] = report.get("spread_scale", "")
    return row


def compare(folder: Path, out: Path, settings: dict[str, list[str]] | None = None
            ) -> list[dict[str, Any]]:
    settings = SETTINGS if settings is None else settings
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.csv"
    rows = list(csv.DictReader(path.open())) if path.is_file() else []
    done = {(r["dataset"], r["variant"], str(r["seed"]), r["setting"]) for r in rows}
    runs = sorted(p.parent for p in folder.glob("runs/*/*/seed*/metrics.json"))
    for run in runs:
        key = (run.parent.parent.name, run.parent.name, run.name.removeprefix("seed"))
        metrics = json.loads((run / "metrics.json").read_text())
        config = (run / "config.yaml").read_text()
        if "cold_start:" not in config:  # reads no features: its metrics as they are
            if (*key, "-") not in done:
                rows.append(_row(metrics, run, "-"))
            continue
        for setting, overrides in settings.items():
            if (*key, setting) in done:
                continue
            print(f"{run}: {setting}", file=sys.stderr, flush=True)
            metrics = refit_cold_path(run, [*DEFAULTS, *overrides], log=lambda _m: None)
            rows.append(_row(metrics, run, setting))
            _write(path, rows)
        # the same trained model without the path: whatever the path's setting
        if (*key, "none") not in done and metrics.get("without_cold_path"):
            rows.append(_row(metrics["without_cold_path"], run, "none"))
            done.add((*key, "none"))
    _write(path, rows)
    (out / "summary.md").write_text(summary(rows))
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def summary(rows: list[dict[str, Any]]) -> str:
    """Per variant and setting, mean ± std over seeds of recall@20 in each view; for the
    path settings, the paired difference against "none" (t-test p)."""
    header = ["| model | setting | seeds | " + " | ".join(v for v, _ in VIEWS) + " |",
              "|---|---|---|" + "---|" * len(VIEWS)]
    lines = [f"test {METRIC}: mean ± std over seeds; for mapper settings, the paired "
             "difference against the same runs without the path (t-test p)"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    for dataset in datasets:  # one table per dataset, titled when there are several
        lines += ["", f"{dataset}:", ""] if len(datasets) > 1 else [""]
        lines += header
        lines += _dataset_rows([r for r in rows if r["dataset"] == dataset])
    return "\n".join(lines) + "\n"


def _dataset_rows(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        base = {str(r["seed"]): r for r in mine if r["setting"] in ("none", "-")}
        for setting in dict.fromkeys(r["setting"] for r in mine):
            have = sorted((r for r in mine if r["setting"] == setting),
                          key=lambda r: int(r["seed"]))
            cells = []
            for _, split in VIEWS:
                column = f"{split}_{METRIC}"
                values = [float(r[column]) for r in have if r.get(column) not in (None, "")]
                if not values:
                    cells.append("n/a")
                    continue
                mean, std = mean_std(values)
                cell = f"{mean:.4f} ± {std:.4f}"
                if setting not in ("none", "-"):
                    pairs = [(float(r[column]), float(base[str(r["seed"])][column]))
                             for r in have if str(r["seed"]) in base
                             and base[str(r["seed"])].get(column) not in (None, "")]
                    if pairs:
                        test = paired_test([a for a, _ in pairs], [b for _, b in pairs])
                        p = test["p_ttest"]
                        cell += (f" ({test['diff']:+.4f}, p = "
                                 f"{'n/a' if math.isnan(p) else f'{p:.2g}'})")
                cells.append(cell)
            lines.append(f"| {variant} | {setting} | {len(have)} | " + " | ".join(cells)
                         + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the experiment folder (searec experiment --out)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=OVERRIDES",
                        help="refit with these comma-separated overrides as setting NAME "
                        "(default: the settings all and cold)")
    args = parser.parse_args()
    settings = None
    if args.setting:
        settings = {}
        for item in args.setting:
            name, sep, overrides = item.partition("=")
            if not sep or not name:
                parser.error(f"--setting {item!r}: expected NAME=KEY=VALUE[,KEY=VALUE...]")
            # a comma starts the next override only before a dotted key (list values
            # hold commas too)
            settings[name] = [o for o in re.split(r",(?=[a-z_]+\.)", overrides) if o]
    rows = compare(args.folder, args.out, settings)
    print(summary(rows), end="")


if __name__ == "__main__":
    main()
