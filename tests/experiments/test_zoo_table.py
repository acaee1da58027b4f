"""scripts/zoo_table.py: a grid's results as one table per dataset, each variant paired
with the baseline and with the variant compare_with names."""

from __future__ import annotations

import csv

import pytest
from scipy import stats

from tests.repo_files import load_module

SPEC = """\
datasets: {d1: null}
variants:
  sea: {}
  bpr: {model: {name: bpr}}
  vbpr: {model: {name: vbpr}}
  vbpr_sep: {model: {name: vbpr, separation: {}}}
seeds: [1, 2, 3]
baseline: sea
compare_with: {vbpr_sep: vbpr}
"""


def test_tables_pair_each_variant_with_the_baseline_and_its_backbone(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    recall = {"sea": [0.10, 0.11, 0.12], "bpr": [0.05, 0.07, 0.06],
              "vbpr": [0.03, 0.04, 0.06], "vbpr_sep": [0.045, 0.04]}  # vbpr_sep: 2 seeds
    out = tmp_path / "out"
    out.mkdir()
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["dataset", "variant", "seed", "test_recall@20"])
        writer.writeheader()
        for variant, values in recall.items():
            for seed, value in enumerate(values, 1):
                writer.writerow({"dataset": "d1", "variant": variant, "seed": seed,
                                 "test_recall@20": value})
    zoo_table = load_module("scripts/zoo_table.py")
    lines = zoo_table.tables(tmp_path / "spec.yaml", out, ["recall@20"]).splitlines()
    assert lines[0] == "d1:"
    assert lines[2] == "| model | recall@20 | recall@20 vs sea (p) | recall@20 vs backbone (p) |"
    assert lines[4] == "| sea | 0.1100 ± 0.0100 | baseline |  |"
    p_bpr = stats.ttest_rel(recall["bpr"], recall["sea"]).pvalue
    assert lines[5] == f"| bpr | 0.0600 ± 0.0100 | -0.0500 ({p_bpr:.2f}) |  |"
    # paired over the two seeds both have: vbpr_sep - vbpr = +0.015, +0.000
    p_sep = stats.ttest_rel([0.045, 0.04], [0.03, 0.04]).pvalue
    assert p_sep == pytest.approx(0.5)
    p_sep_sea = stats.ttest_rel([0.045, 0.04], [0.10, 0.11]).pvalue
    assert 0.01 < p_sep_sea < 0.1
    assert lines[7] == (f"| vbpr_sep | 0.0425 ± 0.0035 (n=2) | -0.0625 ({p_sep_sea:.2f}) | "
                        f"+0.0075 ({p_sep:.2f}) |")
    assert len(lines) == 8
