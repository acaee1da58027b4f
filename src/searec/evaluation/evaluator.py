"""Full-ranking evaluation: every item scored for every user, batched over users.

Items given in ``exclude`` (the user's training items; optionally validation items at test
time) are removed from the ranking. Only users with at least one held-out item count.
Memory is bounded by ``batch_size`` x n_items scores, and never more than
:data:`searec.csr.MAX_BATCH_SCORES` (1 GiB of float32) whatever ``batch_size`` says.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field, field_validator

from searec.csr import csr_rows_mask, csr_rows_positions, users_per_batch
from searec.errors import NonFiniteScoreError
from searec.evaluation.metrics import per_user_metrics
from searec.schema import StrictModel
from searec.scores import ScoreBuffer, ScoreFn
from searec.topk import topk_stable


@torch.no_grad()
def evaluate_ranking(
    score_fn: ScoreFn,
    target: sp.csr_matrix,
    exclude: Sequence[sp.csr_matrix],
    ks: Sequence[int],
    batch_size: int = 4096,
    device: torch.device | str = "cpu",
    candidates: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean of every metric@K over users with >= 1 item in ``target``; plus 'users'.

    ``candidates``: rank only these items (the rest are excluded for every user)."""
    device = torch.device(device)
    ks = sorted(set(ks))
    k_max = max(ks)
    n_items = target.shape[1]
    target = sp.csr_matrix(target)
    n_rel_all = np.diff(target.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    batch_size = users_per_batch(batch_size, n_items)
    outside = None
    if candidates is not None:
        keep = np.zeros(n_items, dtype=bool)
        keep[candidates] = True
        outside = torch.from_numpy(np.flatnonzero(~keep)).to(device)
    sums: dict[str, float] = {}
    score_batch = ScoreBuffer(score_fn, n_items, device)
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = score_batch(torch.from_numpy(batch).to(device))
        for mat in exclude:  # sparse in-place masking: O(nnz), not O(batch x items)
            scores[csr_rows_positions(mat, batch, device)] = -torch.inf
        if outside is not None:
            scores[:, outside] = -torch.inf
        vals, top = topk_stable(scores, k_max)
        if torch.isnan(vals).any():  # topk ranks NaN first, so any NaN score shows up here
            raise NonFiniteScoreError("the model produced NaN scores; evaluation stopped")
        relevant = csr_rows_mask([target], batch, n_items, device)
        hits = relevant.gather(1, top)
        if top.shape[1] < k_max:  # fewer items than K: missing ranks are misses
            pad = torch.zeros((len(batch), k_max - top.shape[1]), dtype=torch.bool, device=device)
            hits = torch.cat([hits, pad], dim=1)
        n_rel = torch.from_numpy(n_rel_all[batch]).to(device)
        for name, values in per_user_metrics(hits, n_rel, ks).items():
            sums[name] = sums.get(name, 0.0) + float(values.sum())
        del scores, relevant  # freed before the next batch's are allocated
    n = max(len(users), 1)
    result = {name: total / n for name, total in sums.items()}
    result["users"] = float(len(users))
    return result


class EvalConfig(StrictModel):
    topk: list[int] = Field(
        default_factory=lambda: [10, 20, 50], description="Cut-offs K for every metric."
    )
    batch_size: int = Field(4096, gt=0, description="Users scored per evaluation batch "
                            "(lowered so one batch holds at most 2^28 scores, 1 GiB).")
    mask_valid_in_test: bool = Field(
        False,
        description="Also exclude a user's validation items when ranking for test (MMRec "
        "masks training items only).",
    )

    @field_validator("topk")
    @classmethod
    def _positive_k(cls, v: list[int]) -> list[int]:
        if not v or any(k <= 0 for k in v):
            raise ValueError(f"must be a non-empty list of integers > 0, got {v}")
        return sorted(set(v))
