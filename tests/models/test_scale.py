"""Every model on a 100,000-item catalogue: built, one training step and inference,
without a dense items x items, users x users or users x items tensor anywhere (every
tensor torch creates is watched)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from searec.data import Dataset
from searec.data.dataset import interaction_matrix
from searec.graphs import InteractionGraph
from searec.models import create_model, registry
from searec.training import seed_everything

N_ITEMS = 100_000
N_USERS = 3_000


class SquareWatch(TorchDispatchMode):
    """Records every dense tensor an op returns whose last two dimensions are both at
    least N_USERS (a users x users, items x items or users x items matrix)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.layout == torch.strided and t.dim() >= 2 \
                    and min(t.shape[-2:]) >= N_USERS:
                self.seen.append((str(func), tuple(t.shape)))
        return out


@pytest.fixture(scope="module")
def catalogue() -> Dataset:
    rng = np.random.default_rng(0)

    def split(per_user: int) -> sp.csr_matrix:
        users = np.repeat(np.arange(N_USERS), per_user)
        return interaction_matrix(users, rng.integers(0, N_ITEMS, len(users)), N_USERS, N_ITEMS)

    train, valid, test = split(8), split(1), split(1)
    features = {"image": rng.standard_normal((N_ITEMS, 8)).astype(np.float32),
                "text": rng.standard_normal((N_ITEMS, 6)).astype(np.float32)}
    return Dataset("catalogue", N_USERS, N_ITEMS, train, valid, test, features)


@pytest.fixture(scope="module")
def knn_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("knn"))  # the kNN graphs are built once


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_model_at_100k_items_without_a_dense_square(name, catalogue, knn_cache):
    fields = registry()[name].Params.model_fields
    params = {"knn_method": "hnsw"} if "knn_method" in fields else {}
    if name == "lattice":
        params["feat_embed_dim"] = 8  # its learned graphs are rebuilt by each forward
    seed_everything(0)
    watch = SquareWatch()
    with watch:
        model = create_model(name, catalogue, params, cache_dir=knn_cache)
        graph = InteractionGraph.from_train(catalogue.train)
        if model.trainable:
            rng = np.random.default_rng(1)
            users = torch.from_numpy(rng.integers(0, N_USERS, 512))
            pos = torch.from_numpy(rng.integers(0, N_ITEMS, 512))
            neg = (torch.from_numpy(rng.integers(0, N_ITEMS, 512)) if model.uses_negatives
                   else torch.empty(0, dtype=torch.long))
            loss = model.loss(graph, users, pos, neg).loss
            assert torch.isfinite(loss)
            loss.backward()
        model.prepare_inference(graph)
        ids, _ = model.recommend(np.arange(8), k=10, user_items=catalogue.train)
    assert ids.shape == (8, 10)
    assert not watch.seen, f"{name}: dense square tensors {watch.seen[:3]}"


def test_the_watch_sees_a_dense_square():
    watch = SquareWatch()
    with watch:
        a = torch.randn(N_USERS, 4)
        torch.sparse_coo_tensor(torch.zeros(2, 1, dtype=torch.long), torch.ones(1),
                                (N_USERS, N_USERS), check_invariants=True)  # sparse: allowed
        assert not watch.seen
        _ = a @ a.T  # users x users, dense
    assert watch.seen == [("aten.mm.default", (N_USERS, N_USERS))]
