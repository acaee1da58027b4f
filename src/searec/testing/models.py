"""The contract every model meets, as functions a plug-in author can run.

``check_model(name, params, dataset, workdir)`` runs every check on a registered model
built with ``params`` over ``dataset``: representation shapes; a finite ``LossResult``
whose total reaches the parameters (and never an auxiliary objective's), also under bf16
autocast; auxiliary objectives that fit only their own parameters; training steps that
lower the loss; recommendations that exclude training items, come in batches and agree
with the full scores; similar items without the item itself; identical scores after a
state-dict round trip. searec's own models run each check in
tests/contract/test_model_contract.py. A failed check is an AssertionError; a check that
does not apply to a model (nothing to train, no auxiliary objective) raises
:class:`NotApplicable`, which ``check_model`` passes over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from searec.data.dataset import Dataset
from searec.graphs import InteractionGraph
from searec.models import create_model
from searec.models.base import LossResult, Recommender
from searec.optim import fit_auxiliary
from searec.training import main_parameters, seed_everything


class NotApplicable(Exception):
    """The check does not apply to this model (e.g. it has nothing to train)."""


@dataclass
class Built:
    """One model as a check gets it: built afresh (seed 0) from its name and params."""

    name: str
    params: dict[str, Any]
    model: Recommender
    graph: InteractionGraph
    dataset: Dataset
    workdir: Path

    @classmethod
    def of(cls, name: str, params: dict[str, Any], dataset: Dataset, workdir: Path) -> Built:
        seed_everything(0)
        model = create_model(name, dataset, params, cache_dir=str(workdir))
        return cls(name, params, model, InteractionGraph.from_train(dataset.train),
                   dataset, Path(workdir))

    def batch(self, n: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        users, items = self.dataset.train_pairs()
        rng = np.random.default_rng(0)
        idx = rng.choice(len(users), n, replace=False)
        neg = rng.integers(0, self.dataset.n_items, n)
        return (torch.from_numpy(users[idx]), torch.from_numpy(items[idx]),
                torch.from_numpy(neg))

    def trainable(self) -> None:
        if not self.model.trainable:
            raise NotApplicable(f"{self.name} has nothing to train")


def check_forward_shapes(b: Built) -> None:
    user_rep, item_rep = b.model(b.graph)
    assert user_rep.shape[0] == b.dataset.n_users, b.name
    assert item_rep.shape[0] == b.dataset.n_items, b.name
    assert user_rep.shape[1] == item_rep.shape[1], b.name
    assert torch.isfinite(user_rep).all() and torch.isfinite(item_rep).all(), b.name


def check_loss(b: Built) -> None:
    """A finite LossResult whose total reaches the model's parameters, never those of an
    auxiliary objective; measured terms are scalars, step facts detached."""
    b.trainable()
    u, p, n = b.batch()
    result = b.model.loss(b.graph, u, p, n)
    assert isinstance(result, LossResult), f"{b.name}: loss() must return a LossResult"
    assert result.loss.ndim == 0, b.name
    assert all(v.ndim == 0 and torch.isfinite(v) for v in result.logged().values()), b.name
    assert all(t.ndim == 0 for t in result.terms.values()), b.name
    assert all(not s.requires_grad for s in result.stats.values()), b.name
    result.loss.backward()
    objectives = b.model.auxiliary_objectives()
    grads = [q.grad for q in main_parameters(b.model, objectives)]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), b.name
    # what an auxiliary objective fits is never moved by the main loss
    assert all(q.grad is None for o in objectives for q in o.parameters), b.name


def check_loss_in_bf16(b: Built) -> None:
    """train.precision=bfloat16 (and auto on hardware with bf16 arithmetic): the loss
    under bf16 autocast is finite, and its backward pass gives finite float32 gradients."""
    b.trainable()
    u, p, n = b.batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = b.model.loss(b.graph, u, p, n)
    assert all(torch.isfinite(v) for v in result.logged().values()), b.name
    result.loss.backward()
    grads = [q.grad for q in main_parameters(b.model, b.model.auxiliary_objectives())
             if q.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all()
                         for g in grads), b.name


def check_auxiliary_objectives(b: Built) -> None:
    objectives = b.model.auxiliary_objectives() if b.model.trainable else []
    if not objectives:
        raise NotApplicable(f"{b.name} declares no auxiliary objective")
    u, p, n = b.batch()
    b.model.loss(b.graph, u, p, n)  # gives the objectives this step's pairs
    before = {id(q): q.detach().clone() for q in b.model.parameters()}
    own = {id(q) for o in objectives for q in o.parameters}
    for o in objectives:
        value = fit_auxiliary(o, torch.optim.Adam(o.parameters, lr=o.lr))
        assert value is not None and np.isfinite(value), (b.name, o.name)
        assert o.loss() is None, (b.name, o.name)  # fitted pairs dropped until next step
    moved = {id(q) for q in b.model.parameters() if not torch.equal(before[id(q)], q)}
    assert moved and moved <= own, b.name


def check_training_lowers_the_loss(b: Built) -> None:
    b.trainable()
    u, p, n = b.batch(64)
    objectives = b.model.auxiliary_objectives()
    opt = torch.optim.Adam(main_parameters(b.model, objectives), lr=1e-2)
    aux = [torch.optim.Adam(o.parameters, lr=o.lr) for o in objectives]
    first = None
    for _ in range(30):
        loss = b.model.loss(b.graph, u, p, n).loss
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
        for o, o_opt in zip(objectives, aux, strict=True):
            fit_auxiliary(o, o_opt)
    assert first is not None
    assert float(b.model.loss(b.graph, u, p, n).loss.detach()) < first, b.name


def check_recommend(b: Built) -> None:
    """Top-k excludes training items, is the same in any batch size, refuses bad ids."""
    b.model.prepare_inference(b.graph)
    train = b.dataset.train
    users = np.arange(b.dataset.n_users)
    ids, scores = b.model.recommend(users, k=10, user_items=train, batch_size=17)
    assert ids.shape == scores.shape == (b.dataset.n_users, 10), b.name
    for u in users:
        assert not set(ids[u]) & set(train[u].indices), (b.name, u)
        assert len(set(ids[u])) == 10, (b.name, u)
    assert (np.diff(scores, axis=1) <= 1e-6).all(), b.name
    ids2, _ = b.model.recommend(users, k=10, user_items=train, batch_size=4096)
    np.testing.assert_array_equal(ids, ids2)
    try:
        b.model.recommend([b.dataset.n_users], k=5)
    except ValueError as exc:
        assert "user ids" in str(exc), b.name
    else:
        raise AssertionError(f"{b.name}: recommend() took an unknown user id")


def check_recommend_scores_match_full_scores(b: Built) -> None:
    b.model.prepare_inference(b.graph)
    full = b.model.score_users(torch.arange(5)).numpy()
    ids, scores = b.model.recommend(np.arange(5), k=3)
    np.testing.assert_allclose(np.take_along_axis(full, ids, 1), scores, rtol=1e-5)


def check_similar_items(b: Built) -> None:
    b.model.prepare_inference(b.graph)
    ids, sims = b.model.similar_items([0, 1, 2], k=5)
    assert ids.shape == (3, 5), b.name
    for row, item in enumerate([0, 1, 2]):
        assert item not in ids[row], b.name
    assert (sims <= 1 + 1e-5).all(), b.name


def check_state_dict_roundtrip(b: Built) -> None:
    b.model.prepare_inference(b.graph)
    before = b.model.score_users(torch.arange(b.dataset.n_users))
    torch.save(b.model.state_dict(), b.workdir / "contract-state.pt")
    seed_everything(123)
    other = create_model(b.name, b.dataset, b.params, cache_dir=str(b.workdir))
    other.load_state_dict(torch.load(b.workdir / "contract-state.pt", weights_only=True))
    other.prepare_inference(b.graph)
    torch.testing.assert_close(other.score_users(torch.arange(b.dataset.n_users)), before)


MODEL_CHECKS: list[Callable[[Built], None]] = [
    check_forward_shapes, check_loss, check_loss_in_bf16, check_auxiliary_objectives,
    check_training_lowers_the_loss, check_recommend, check_recommend_scores_match_full_scores,
    check_similar_items, check_state_dict_roundtrip]


def check_model(name: str, params: dict[str, Any], dataset: Dataset,
                workdir: str | Path) -> None:
    """Every check on the registered model ``name`` with ``params`` over ``dataset``
    (each on a model built afresh; ``workdir`` holds its kNN cache and files)."""
    for check in MODEL_CHECKS:
        try:
            check(Built.of(name, params, dataset, Path(workdir)))
        except NotApplicable:
            continue
