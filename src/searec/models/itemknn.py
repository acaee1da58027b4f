"""Feature kNN: the content baseline of the cold-start protocol."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from searec.data.dataset import Dataset
from searec.graphs import CacheDir, InteractionGraph
from searec.models.base import NoParams, Recommender, register
from searec.schema import StrictModel


@register
class ItemKNN(Recommender):
    """Feature kNN: mean cosine similarity of an item's raw features to the user's items.

    Each modality's rows are scaled to unit length and the modalities concatenated with
    weight 1/sqrt(M), so the dot product of two items is the mean of their per-modality
    cosine similarities; a user's score for an item is that similarity averaged over the
    user's training items (MMRec's ItemKNNCBF keeps only each item's top neighbours; the
    full sum keeps this a dot product of a user and an item vector). Nothing is trained,
    and an item needs only its features, so cold items are scored like any other."""

    name = "itemknn"
    Params = NoParams
    trainable = False
    min_modalities = 1
    scores_new_items = True

    def __init__(self, n_users: int, n_items: int, features: dict[str, np.ndarray]) -> None:
        super().__init__(n_users, n_items)
        weight = 1.0 / np.sqrt(len(features))
        unit = torch.cat([F.normalize(torch.as_tensor(f, dtype=torch.float32), dim=1) * weight
                          for f in features.values()], dim=1)
        self.register_buffer("item_unit", unit, persistent=False)

    @classmethod
    def build(cls, dataset: Dataset, params: StrictModel,
              cache_dir: CacheDir = None) -> ItemKNN:
        return cls(dataset.n_users, dataset.n_items, dataset.modalities)

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        return graph.user_mean(self.item_unit), self.item_unit
