"""The contract every registered model must meet (one suite, run for each model)."""

import contextlib

import numpy as np
import pytest
import torch

from searec.graphs import InteractionGraph
from searec.models import create_model, registry
from searec.models.base import LossResult
from searec.optim import fit_auxiliary
from searec.training import main_parameters, seed_everything


def _variants() -> list[tuple[str, dict]]:
    """Every registered model with its defaults, and with SEA's separation where it can."""
    out = []
    for name, cls in sorted(registry().items()):
        out.append((name, {}))
        if "separation" in cls.Params.model_fields:
            out.append((name, {"separation": {"distancing": {"q_steps": 2}}}))
    return out


VARIANTS = _variants()


@pytest.fixture(params=VARIANTS, ids=[n + ("+sea" if p else "") for n, p in VARIANTS])
def built(request, tiny, tmp_path):
    name, params = request.param
    seed_everything(0)
    model = create_model(name, tiny, params, cache_dir=str(tmp_path))
    model.contract_params = params
    return name, model, InteractionGraph.from_train(tiny.train)


def _batch(tiny, n=32):
    users, items = tiny.train_pairs()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(users), n, replace=False)
    neg = rng.integers(0, tiny.n_items, n)
    return (torch.from_numpy(users[idx]), torch.from_numpy(items[idx]), torch.from_numpy(neg))


def test_forward_shapes(built, tiny):
    _, model, graph = built
    user_rep, item_rep = model(graph)
    assert user_rep.shape[0] == tiny.n_users and item_rep.shape[0] == tiny.n_items
    assert user_rep.shape[1] == item_rep.shape[1]
    assert torch.isfinite(user_rep).all() and torch.isfinite(item_rep).all()


def test_loss_parts_are_finite_and_reach_parameters(built, tiny):
    name, model, graph = built
    if not model.trainable:
        pytest.skip(f"{name} has nothing to train")
    u, p, n = _batch(tiny)
    result = model.loss(graph, u, p, n)
    assert isinstance(result, LossResult) and result.loss.ndim == 0
    assert all(v.ndim == 0 and torch.isfinite(v) for v in result.logged().values())
    # measured terms are parts of the total; facts about the step are detached
    assert all(t.ndim == 0 for t in result.terms.values())
    assert all(not s.requires_grad for s in result.stats.values())
    result.loss.backward()
    objectives = model.auxiliary_objectives()
    grads = [q.grad for q in main_parameters(model, objectives)]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # what an auxiliary objective fits is never moved by the main loss
    assert all(q.grad is None for o in objectives for q in o.parameters)


def test_auxiliary_objectives_fit_only_their_own_parameters(built, tiny):
    name, model, graph = built
    objectives = model.auxiliary_objectives() if model.trainable else []
    if not objectives:
        pytest.skip(f"{name} declares no auxiliary objective")
    u, p, n = _batch(tiny)
    model.loss(graph, u, p, n)  # gives the objectives this step's pairs
    before = {id(q): q.detach().clone() for q in model.parameters()}
    own = {id(q) for o in objectives for q in o.parameters}
    for o in objectives:
        value = fit_auxiliary(o, torch.optim.Adam(o.parameters, lr=o.lr))
        assert value is not None and np.isfinite(value)
        assert o.loss() is None  # fitted pairs are dropped until the next step
    moved = {id(q) for q in model.parameters() if not torch.equal(before[id(q)], q)}
    assert moved and moved <= own


def test_training_steps_reduce_loss(built, tiny):
    name, model, graph = built
    if not model.trainable:
        pytest.skip(f"{name} has nothing to train")
    u, p, n = _batch(tiny, 64)
    objectives = model.auxiliary_objectives()
    opt = torch.optim.Adam(main_parameters(model, objectives), lr=1e-2)
    aux = [torch.optim.Adam(o.parameters, lr=o.lr) for o in objectives]
    first = None
    for _ in range(30):
        loss = model.loss(graph, u, p, n).loss
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
        for o, o_opt in zip(objectives, aux, strict=True):
            fit_auxiliary(o, o_opt)
    assert float(model.loss(graph, u, p, n).loss.detach()) < first


def test_recommend_excludes_seen_items_and_is_batched(built, tiny):
    _, model, graph = built
    model.prepare_inference(graph)
    users = np.arange(tiny.n_users)
    ids, scores = model.recommend(users, k=10, user_items=tiny.train, batch_size=17)
    assert ids.shape == scores.shape == (tiny.n_users, 10)
    for u in users:
        assert not set(ids[u]) & set(tiny.train[u].indices)
        assert len(set(ids[u])) == 10
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    ids2, _ = model.recommend(users, k=10, user_items=tiny.train, batch_size=4096)
    np.testing.assert_array_equal(ids, ids2)
    with pytest.raises(ValueError, match="user ids"):
        model.recommend([tiny.n_users], k=5)


def test_recommend_scores_match_full_scores(built, tiny):
    _, model, graph = built
    model.prepare_inference(graph)
    full = model.score_users(torch.arange(5)).numpy()
    ids, scores = model.recommend(np.arange(5), k=3)
    np.testing.assert_allclose(np.take_along_axis(full, ids, 1), scores, rtol=1e-5)


def test_similar_items_excludes_self(built, tiny):
    _, model, graph = built
    model.prepare_inference(graph)
    ids, sims = model.similar_items([0, 1, 2], k=5)
    assert ids.shape == (3, 5)
    for row, item in enumerate([0, 1, 2]):
        assert item not in ids[row]
    assert (sims <= 1 + 1e-5).all()


def test_state_dict_roundtrip_gives_identical_scores(built, tiny, tmp_path):
    name, model, graph = built
    model.prepare_inference(graph)
    before = model.score_users(torch.arange(tiny.n_users))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    seed_everything(123)
    other = create_model(name, tiny, model.contract_params, cache_dir=str(tmp_path))
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=False))
    other.prepare_inference(graph)
    torch.testing.assert_close(other.score_users(torch.arange(tiny.n_users)), before)


CHECKS = [test_forward_shapes, test_loss_parts_are_finite_and_reach_parameters,
          test_auxiliary_objectives_fit_only_their_own_parameters,
          test_training_steps_reduce_loss, test_recommend_excludes_seen_items_and_is_batched,
          test_recommend_scores_match_full_scores, test_similar_items_excludes_self,
          test_state_dict_roundtrip_gives_identical_scores]


def check_model(name: str, params: dict, dataset, tmp_path) -> None:
    """The whole suite on one registered model (docs/extending.md's worked example)."""
    for check in CHECKS:
        seed_everything(0)
        model = create_model(name, dataset, params, cache_dir=str(tmp_path))
        model.contract_params = params
        built = (name, model, InteractionGraph.from_train(dataset.train))
        kwargs = {"tmp_path": tmp_path} if "tmp_path" in check.__code__.co_varnames else {}
        with contextlib.suppress(pytest.skip.Exception):  # e.g. no auxiliary objective
            check(built, dataset, **kwargs)


def test_check_model_fails_a_broken_model(tiny, tmp_path, monkeypatch):
    """The suite can fail: a model whose recommendations include training items is caught."""
    from searec.models import get_model_class
    from searec.models.base import Recommender

    def ignores_seen_items(self, users, k=10, user_items=None, batch_size=4096):
        return Recommender.recommend(self, users, k, None, batch_size)

    monkeypatch.setattr(get_model_class("bpr"), "recommend", ignores_seen_items)
    with pytest.raises(AssertionError):
        check_model("bpr", {}, tiny, tmp_path)
