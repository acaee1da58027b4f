"""Batches of user x item scores, computed into one reused allocation.

Full-ranking evaluation, ``recommend`` and the cold-item calibration score every item for
a batch of users at a time: up to :data:`searec.csr.MAX_BATCH_SCORES` values per batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

# user ids (B,) -> scores (B, n_items); one that also takes a keyword ``out`` is handed a
# (B, n_items) float32 buffer, reused across batches, that it may fill and return
ScoreFn = Callable[..., torch.Tensor]


def writes_into(score_fn: ScoreFn) -> bool:
    """Whether ``score_fn`` takes a keyword ``out`` (a buffer to write the scores into)."""
    try:
        return "out" in inspect.signature(score_fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


class ScoreBuffer:
    """Batches of scores in one reused allocation where ``score_fn`` can write into one.

    A fresh batch x items tensor per batch, allocated while the previous batch's is still
    alive, page-faults its way through up to 1 GiB every batch: at 200,000 items and
    384-d, 4,096 users took 12-20 s that way against 7.8-8.1 s into a reused buffer
    (one CPU thread; docs/performance.md)."""

    def __init__(self, score_fn: ScoreFn, n_items: int, device: torch.device) -> None:
        self.score_fn = score_fn
        self.n_items = n_items
        self.device = device
        self.into = writes_into(score_fn)
        self.buffer: torch.Tensor | None = None

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        if not self.into:
            return self.score_fn(users).float()
        # sized by the largest batch seen (the first, in a batched loop), not by the batch
        # bound: a one-user request (the server's recommend) must not allocate 1 GiB
        if self.buffer is None or len(self.buffer) < len(users):
            self.buffer = torch.empty((len(users), self.n_items), device=self.device)
        return self.score_fn(users, out=self.buffer[: len(users)]).float()
