"""scripts/cold_start_compare.py's table: paired differences against the same runs
without the cold-item path, on hand-made rows."""

from __future__ import annotations

from tests.repo_files import load_module

compare = load_module("scripts/cold_start_compare.py")


def _row(variant: str, seed: int, setting: str, cold: float, warm: float,
         dataset: str = "d") -> dict:
    return {"dataset": dataset, "variant": variant, "seed": seed, "setting": setting,
            "test_recall@20": (cold + warm) / 2, "test_warm_recall@20": warm,
            "test_cold_recall@20": cold, "test_cold_catalogue_recall@20": 0.3}


def test_summary_pairs_each_setting_with_the_same_seeds_without_the_path():
    rows = [_row("sea", s, "none", 0.0, 0.20 + s / 100) for s in (1, 2, 3)]
    rows += [_row("sea", s, "cold", 0.03 + s / 1000, 0.196 + s / 100) for s in (1, 2, 3)]
    rows += [_row("itemknn", s, "-", 0.02, 0.04) for s in (1, 2, 3)]
    table = compare.summary(rows)
    line = next(t for t in table.splitlines() if t.startswith("| sea | cold |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2] == "3"
    assert cells[4].startswith("0.2160 ± 0.0100 (-0.0040, p = ")  # warm: paired, exact
    assert cells[5].startswith("0.0320 ± 0.0010 (+0.0320, p = ")
    assert "| itemknn | - | 3 | 0.0300 ± 0.0000 |" in table


def test_runs_of_two_datasets_are_paired_within_their_own_dataset():
    rows = [_row("sea", s, "none", 0.0, 0.20, dataset=d) for s in (1, 2) for d in ("a", "b")]
    rows += [_row("sea", s, "cold", 0.01, 0.19 + s / 1000, dataset="a") for s in (1, 2)]
    rows += [_row("sea", s, "cold", 0.02, 0.21 + s / 1000, dataset="b") for s in (1, 2)]
    table = compare.summary(rows)
    a, b = table.split("\nb:\n")
    assert "\na:\n" in a
    for part, diff in ((a, "-0.0085"), (b, "+0.0115")):
        line = next(t for t in part.splitlines() if t.startswith("| sea | cold |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == "2"  # two seeds each, not four
        assert f"({diff}, p = " in cells[4]
