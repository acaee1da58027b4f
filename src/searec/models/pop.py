"""Most-popular baseline."""

from __future__ import annotations

import numpy as np
import torch

from searec.data.dataset import Dataset
from searec.graphs import CacheDir, InteractionGraph
from searec.models.base import NoParams, Recommender, register
from searec.schema import StrictModel


@register
class Pop(Recommender):
    """Popularity: every user gets the items with the most training interactions."""

    name = "pop"
    Params = NoParams
    trainable = False

    def __init__(self, n_users: int, n_items: int, counts: np.ndarray | None = None) -> None:
        super().__init__(n_users, n_items)
        counts = np.zeros(n_items) if counts is None else counts
        self.register_buffer("counts", torch.as_tensor(counts, dtype=torch.float32))

    @classmethod
    def build(
        cls, dataset: Dataset, params: StrictModel, cache_dir: CacheDir = None
    ) -> Pop:
        counts = np.asarray(dataset.train.sum(axis=0)).ravel()
        return cls(dataset.n_users, dataset.n_items, counts)

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        ones = torch.ones(self.n_users, 1, device=self.counts.device)
        return ones, self.counts[:, None]
