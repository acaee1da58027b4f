"""Multi-seed aggregation and paired significance tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Paired comparison of ``a`` against ``b`` over the same seeds.

    Returns the mean difference, the two-sided paired t-test p-value and, with at least
    6 pairs (below that the test cannot reach p < 0.05), the Wilcoxon signed-rank p-value.
    p is NaN when it is undefined (fewer than 2 pairs, or all differences equal).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal lengths, got {len(x)} and {len(y)}")
    diff = x - y
    out = {"diff": float(diff.mean()) if len(diff) else math.nan, "p_ttest": math.nan,
           "p_wilcoxon": math.nan, "n": float(len(diff))}
    if len(diff) >= 2 and np.ptp(diff) > 0:
        out["p_ttest"] = float(stats.ttest_rel(x, y).pvalue)
    if len(diff) >= 6 and np.any(diff != 0):
        out["p_wilcoxon"] = float(stats.wilcoxon(x, y).pvalue)
    return out
