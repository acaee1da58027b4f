"""Top-k with a defined tie-break: higher score first, then lower index.

``torch.topk`` leaves the order of equal scores unspecified, which makes metrics and kNN
graphs depend on the platform. This keeps topk's speed and repairs only the rows where a
tie crosses the cut-off (rare with learned float scores).
"""

from __future__ import annotations

import torch


def _order_by_value_then_index(
    vals: torch.Tensor, idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    by_idx = torch.argsort(idx, dim=1)
    vals, idx = vals.gather(1, by_idx), idx.gather(1, by_idx)
    by_val = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return vals.gather(1, by_val), idx.gather(1, by_val)


def topk_stable(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise top-k of a 2-D tensor -> (values, indices), ties broken by lower index.

    Scores must not be NaN (callers check; torch ranks NaN above everything).
    """
    n = scores.shape[1]
    k = min(k, n)
    # One extra candidate tells whether a tie crosses the cut: only then can the kept set
    # depend on topk's unspecified tie order, and only those rows are sorted exactly.
    vals, idx = torch.topk(scores, min(k + 1, n), dim=1)
    if vals.shape[1] > k:
        repair = torch.nonzero(vals[:, k] == vals[:, k - 1]).ravel()
        vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
    else:
        repair = torch.zeros(0, dtype=torch.long)
    if len(repair):
        sub = scores[repair]
        order = torch.sort(sub, dim=1, descending=True, stable=True)
        vals[repair] = order.values[:, :k]
        idx[repair] = order.indices[:, :k]
    return _order_by_value_then_index(vals, idx)


def merge_topk(values: list[torch.Tensor], indices: list[torch.Tensor], k: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The row-wise top-k of several disjoint column sets, from each set's own top-k
    (``topk_stable`` of each, indices already global): exact, with the same order, since
    each set's top k holds every item of the whole top k that is in it."""
    vals, idx = _order_by_value_then_index(torch.cat(values, 1), torch.cat(indices, 1))
    return vals[:, :k], idx[:, :k]
