"""The evaluation protocol: a model's full-ranking metrics on a split, and the cold-start
protocol's views (warm items; cold items ranked in the whole catalogue; cold items ranked
among themselves).

A model is anything with ``prepare_inference(graph)`` and ``score_users(users)``
(:class:`RankingModel`); searec's models all are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np
import scipy.sparse as sp
import torch

from searec.data.dataset import Dataset
from searec.evaluation.evaluator import EvalConfig, evaluate_ranking
from searec.graphs import InteractionGraph


class RankingModel(Protocol):
    """What the protocol needs of a model."""

    name: ClassVar[str]
    # True: items without interactions get representations from their features
    scores_new_items: ClassVar[bool]

    def prepare_inference(self, graph: InteractionGraph) -> None: ...

    def score_users(self, users: torch.Tensor) -> torch.Tensor: ...


def evaluate_model(
    model: RankingModel,
    graph: InteractionGraph,
    dataset: Dataset,
    split: str,
    cfg: EvalConfig,
    device: torch.device | str = "cpu",
    items: np.ndarray | None = None,
    rank_only_items: bool = False,
) -> dict[str, float]:
    """Full-ranking metrics of ``model`` on 'valid' or 'test' (training items masked).

    ``items``: count only held-out interactions with these items (e.g. the cold ones);
    the ranking is over the whole catalogue, or over ``items`` alone with
    ``rank_only_items``."""
    model.prepare_inference(graph)
    return prepared_metrics(model, dataset, split, cfg, device, items, rank_only_items)


def prepared_metrics(
    model: RankingModel,
    dataset: Dataset,
    split: str,
    cfg: EvalConfig,
    device: torch.device | str = "cpu",
    items: np.ndarray | None = None,
    rank_only_items: bool = False,
) -> dict[str, float]:
    """``evaluate_model`` over the representations ``model`` already holds
    (``prepare_inference``), for several evaluations of one set of representations."""
    exclude = [dataset.train]
    if split == "test" and cfg.mask_valid_in_test:
        exclude.append(dataset.valid)
    target = dataset.valid if split == "valid" else dataset.test
    if items is not None:
        keep = np.zeros(dataset.n_items, dtype=np.float32)
        keep[items] = 1.0
        target = (target @ sp.diags(keep)).tocsr()
        target.eliminate_zeros()
    return evaluate_ranking(
        model.score_users, target, exclude, cfg.topk, cfg.batch_size, device=device,
        candidates=items if rank_only_items else None)


def warm_and_cold_metrics(
    model: RankingModel,
    graph: InteractionGraph,
    dataset: Dataset,
    cfg: EvalConfig,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Test metrics over warm and over cold items alone, when the test split has cold
    items (no training interaction): the cold-start protocol. ``test_cold`` ranks the
    whole catalogue (what a deployed model faces), ``test_cold_catalogue`` the cold
    items among themselves. A model that scores items from interactions only gets
    ``test_cold: null`` and a note saying why."""
    cold = dataset.cold_items()
    if not len(cold) or not dataset.test[:, cold].nnz:
        return {}
    model.prepare_inference(graph)  # once for the three evaluations below

    def test_over(items: np.ndarray, rank_only_items: bool = False) -> dict[str, float]:
        return prepared_metrics(model, dataset, "test", cfg, device, items, rank_only_items)

    warm = np.setdiff1d(np.arange(dataset.n_items), cold)
    test_warm = test_over(warm)
    out: dict[str, Any] = {"test_warm": metric_values(test_warm),
                           "test_warm_users": int(test_warm["users"]),
                           "cold_items": len(cold)}
    if not type(model).scores_new_items:
        note = (f"model {type(model).name!r} scores items from interactions only: "
                f"metrics over the {len(cold)} cold items are not applicable")
        log(f"note: {note}")
        return {**out, "test_cold": None, "test_cold_note": note}
    test_cold = test_over(cold)
    # the cold-start papers' view: the cold items ranked among themselves only
    among = test_over(cold, rank_only_items=True)
    return {**out, "test_cold": metric_values(test_cold),
            "test_cold_users": int(test_cold["users"]),
            "test_cold_catalogue": metric_values(among)}


def metric_values(result: dict[str, float]) -> dict[str, float]:
    """An evaluation's metrics without its evaluated-user count."""
    return {k: v for k, v in result.items() if k != "users"}
