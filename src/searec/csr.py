"""Batched scoring helpers shared by evaluation and ``recommend``: how many users fit in one
batch of scores, and where a batch's rows of a CSR matrix (e.g. training items to mask) are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

MAX_BATCH_SCORES = 2**28  # scores in one batch at most: 1 GiB of float32


def users_per_batch(batch_size: int, n_items: int) -> int:
    """``batch_size``, lowered so a batch of scores stays within MAX_BATCH_SCORES."""
    return max(1, min(batch_size, MAX_BATCH_SCORES // max(n_items, 1)))


def csr_rows_positions(
    mat: sp.csr_matrix, rows: np.ndarray, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row-in-batch, column) index tensors of the nonzeros of ``mat[rows]``."""
    sub = mat[rows]
    r = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
    return (torch.from_numpy(r).to(device),
            torch.from_numpy(sub.indices.astype(np.int64)).to(device))


def csr_rows_mask(mats: Sequence[sp.csr_matrix], rows: np.ndarray, n_cols: int,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean (len(rows), n_cols) mask of the union of the given CSR matrices' rows."""
    mask = torch.zeros((len(rows), n_cols), dtype=torch.bool, device=device)
    for mat in mats:
        mask[csr_rows_positions(mat, rows, device)] = True
    return mask
