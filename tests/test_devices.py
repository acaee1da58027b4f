"""Checks that need a CUDA device, skipped without one: on a GPU machine run
``pytest tests/test_devices.py``. benchmarks/gpu_smoke.py runs the same paths on a real
dataset, with timings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import searec
from searec.config import load_config
from searec.graphs import BipartiteOperator, SparseOperator, bipartite_adjacency
from searec.graphs.operators import sym_normalize
from searec.models.cold import ColdItemMapper
from tests.test_graphs import _assert_propagated_sum_matches_dense, _ratings_with_cold_rows

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cold_mapper_draws_the_same_weights_on_the_gpu_as_on_the_cpu():
    """The mapper's initial weights come from the run's (CPU) generator whatever the
    device: a seed gives one mapper (a CUDA module once refused the CPU generator)."""
    dims = {"image": 8, "text": 6}
    on_cpu = ColdItemMapper(dims, rep_dim=4, hidden=5)
    on_gpu = ColdItemMapper(dims, rep_dim=4, hidden=5).to("cuda")
    on_cpu.reset_parameters(torch.Generator().manual_seed(3))
    on_gpu.reset_parameters(torch.Generator().manual_seed(3))
    for name, value in on_cpu.state_dict().items():
        torch.testing.assert_close(on_gpu.state_dict()[name].cpu(), value)


@pytest.mark.parametrize("kind", ["bipartite", "sparse"])
def test_propagated_sum_and_its_gradient_on_the_gpu_match_dense_powers(kind):
    r = _ratings_with_cold_rows()
    whole = sym_normalize(bipartite_adjacency(r))
    op = (BipartiteOperator.normalized(r, "cuda") if kind == "bipartite"
          else SparseOperator.from_scipy(whole, "cuda", symmetric=True))
    x = torch.randn(sum(r.shape), 8).cuda().t().contiguous().t()  # column-major too
    _assert_propagated_sum_matches_dense(op, torch.from_numpy(whole.toarray()), x, 3,
                                         rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(searec.registry()))
def test_every_model_trains_evaluates_and_recommends_on_the_gpu(tmp_path, name):
    run = tmp_path / name
    metrics = searec.train(load_config(None, [
        f"model.name={name}", "train.epochs=1", "train.device=cuda",
        "data.synthetic.n_users=60", "data.synthetic.n_items=40",
        "data.synthetic.interactions_per_user=8",
        "data.synthetic.modalities={image: 8, text: 6}", "train.progress=false"]),
        run, log=lambda _m: None)
    assert all(math.isfinite(v) for v in metrics["test"].values())
    _, dataset, model = searec.load_run(run)
    ids, scores = model.recommend([0, 1], k=5, user_items=dataset.train)
    assert ids.shape == (2, 5) and np.isfinite(np.asarray(scores)).all()
