"""scripts/zoo_table.py: grids' summary.csv files side by side, one row per variant."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "zoo_table.py"
FIELDS = ["dataset", "variant", "metric", "mean", "std", "seeds", "paired_seeds",
          "baseline", "diff", "p_ttest", "p_wilcoxon"]


def load_script():
    spec = importlib.util.spec_from_file_location("zoo_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_summary(grid: Path, rows: list[list[object]]) -> None:
    grid.mkdir()
    with open(grid / "summary.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        writer.writerows(rows)


def test_table_puts_datasets_side_by_side(tmp_path):
    write_summary(tmp_path / "a", [
        ["d1", "sea", "recall@20", 0.1, 0.002, 3, "", "", "", "", ""],
        ["d1", "bpr", "recall@20", 0.05, 0.001, 3, 3, "sea", -0.05, 0.004, "nan"],
        ["d1", "bpr_sep", "recall@20", 0.06, 0.001, 2, 2, "bpr", 0.01, 0.2, "nan"],
        ["d1", "sea", "ndcg@20", 0.04, 0.001, 3, "", "", "", "", ""],
        ["d1", "bpr", "ndcg@20", 0.02, 0.001, 3, 3, "sea", -0.02, 0.01, "nan"],
    ])
    write_summary(tmp_path / "b", [
        ["d2", "sea", "recall@20", 0.2, 0.003, 3, "", "", "", "", ""],
        ["d2", "sea", "ndcg@20", 0.3, 0.004, 3, "", "", "", "", ""],
    ])
    lines = load_script().table([tmp_path / "a", tmp_path / "b"],
                                ["recall@20", "ndcg@20"]).splitlines()
    assert lines[0] == ("| model | d1 recall@20 | d1 ndcg@20 | d1 paired, recall@20 | "
                        "d2 recall@20 | d2 ndcg@20 | d2 paired, recall@20 |")
    assert lines[2] == ("| sea | 0.1000 ± 0.0020 | 0.0400 ± 0.0010 | baseline | "
                        "0.2000 ± 0.0030 | 0.3000 ± 0.0040 | baseline |")
    assert lines[3] == ("| bpr | 0.0500 ± 0.0010 | 0.0200 ± 0.0010 | -0.0500 vs sea "
                        "(p 0.004) | - | - | - |")
    # fewer seeds than the grid's most are marked; a missing metric is "-"
    assert lines[4] == ("| bpr_sep | 0.0600 ± 0.0010 (n=2) | - | +0.0100 vs bpr (p 0.20) | "
                        "- | - | - |")
    assert len(lines) == 5
