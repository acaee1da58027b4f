"""Fitting the cold-item path (searec.models.cold) of a trained model, after training.

1. The backbone's user and item representations are computed over the training graph.
2. The mapper is regressed onto the warm items' representations (mean squared error,
   scaled by their mean squared norm), from their standardised features; with
   ``rank_weight`` > 0, plus that weight x a BPR term: for a training interaction (u, i),
   the mapped i against a random warm item's trained representation, u frozen.
3. Calibration: every (anchor, spread) scale pair of the settings is tried, the stand-in
   items taking the calibrated mapper output, and the run's ``train.valid_metric`` is
   measured over all, warm and stand-in items (at most CALIBRATION_USERS users). Kept:
   the pair with the best stand-in metric whose warm metric loses at most
   ``max_warm_loss`` against the representations without the path
   (``calibrate_for: cold``), or the best over all items (``calibrate_for: all``).
   The stand-ins are the items without training interactions that have validation
   ones: under the cold-start protocol, the cold-validation items, which test never
   sees. Where there are none (an ordinary run), a seeded share of the warm items
   (``model.cold_start.holdout``) is left out of the regression and stands in.

Everything random uses its own generator seeded from the run's seed: the rest of the run
is unchanged by the fitting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from searec.csr import csr_rows_mask, csr_rows_positions, users_per_batch
from searec.data.dataset import Dataset
from searec.evaluation.metrics import parse_metric, per_user_metrics
from searec.graphs import InteractionGraph
from searec.models.base import Recommender
from searec.models.cold import ColdStartParams
from searec.models.multimodal import MultimodalRecommender
from searec.scores import ScoreBuffer
from searec.topk import merge_topk, topk_stable

# users the calibration scores (a seeded sample above that): the grid then costs about
# this many users' scores over the catalogue once, and over the stand-in items per
# candidate, whatever the catalogue's size
CALIBRATION_USERS = 20_000


def fit_cold_start(model: Recommender, graph: InteractionGraph, dataset: Dataset,
                   valid_metric: str, seed: int, log: Callable[[str], None] = print
                   ) -> dict[str, Any] | None:
    """Fit ``model``'s cold-item mapper in place (None: the model has no cold-item path,
    or its ``model.cold_start.method`` is none); what was fitted and measured."""
    if not isinstance(model, MultimodalRecommender) or model.cold_start.method == "none":
        return None
    settings = model.cold_start
    t0 = time.perf_counter()
    generator = torch.Generator().manual_seed(int(seed) % 2**63)
    with cold_path_off(model):  # the backbone's own representations, as trained
        model.prepare_inference(graph)
    user_rep, item_rep = (t.detach() for t in model.representations())
    device = item_rep.device
    degree = graph.item_degree().cpu().numpy()
    warm = np.flatnonzero(degree > 0)
    cold = np.flatnonzero(degree == 0)
    if len(warm) < 2:
        log("cold-start mapper: fewer than 2 items with training interactions; not fitted")
        return None
    valid = sp.csr_matrix(dataset.valid)
    cold_in_valid = cold[np.diff(valid.tocsc().indptr)[cold] > 0] if len(cold) else cold
    if len(cold_in_valid):  # the cold-start protocol's cold-validation items: the real thing
        held, fit_items = np.empty(0, dtype=np.int64), warm
    else:  # no cold item to calibrate on: warm items set aside stand in for them
        order = warm[torch.randperm(len(warm), generator=generator).numpy()]
        n_held = min(round(settings.holdout * len(warm)), len(warm) - 1)
        held, fit_items = np.sort(order[:n_held]), np.sort(order[n_held:])

    features = model.raw_features()
    mapper = model.new_cold_mapper(item_rep.shape[1])
    mapper.reset_parameters(generator)
    fit_index = torch.from_numpy(fit_items).to(device)
    inputs = torch.cat([features[m].float() for m in mapper.names], dim=1)[fit_index]
    mapper.input_mean.copy_(inputs.mean(0))
    mapper.input_scale.copy_(inputs.std(0).nan_to_num(1.0).clamp_min(1e-6))
    targets = item_rep[fit_index].float()
    mapper.anchor.copy_(targets.mean(0))
    scale = (targets**2).sum(1).mean().clamp_min(1e-12)
    pairs = _training_pairs(dataset, fit_items) if settings.rank_weight > 0 else None
    loss = _regress(mapper, {m: f[fit_index] for m, f in features.items()}, targets, scale,
                    settings, generator, user_rep, pairs)

    with torch.no_grad():
        mapped = mapper.raw(features).to(item_rep)
    stand_ins = np.union1d(cold, held)
    users = _calibration_users(dataset, stand_ins, generator)
    grid = [(a, s) for a in settings.anchor_scales for s in settings.spread_scales]
    results: dict[tuple[float, float], dict[str, float]] = {}
    baseline: dict[str, float] = {}
    if len(users):
        index = torch.from_numpy(stand_ins).to(device)
        scored = calibration_metrics(
            user_rep, item_rep, stand_ins,
            [item_rep[index], *(mapper.calibrated(mapped[index], a, s) for a, s in grid)],
            dataset, users, valid_metric)
        baseline = scored[0]
        results = dict(zip(grid, scored[1:], strict=True))
        anchor_scale, spread_scale = _choose(grid, results, baseline, settings.calibrate_for,
                                             settings.max_warm_loss)
    else:
        anchor_scale, spread_scale = 1.0, 1.0
        log("cold-start mapper: no validation interaction with a stand-in item; "
            "calibration left at 1, 1")
    mapper.calibration.copy_(torch.tensor([anchor_scale, spread_scale]))
    mapper.fitted.fill_(1)
    report = {
        "method": "mapper", "fit_items": len(fit_items), "holdout_items": len(held),
        "cold_items": len(cold), "calibration_users": len(users),
        "regression_loss": round(loss, 6), "calibrate_for": settings.calibrate_for,
        "anchor_scale": anchor_scale, "spread_scale": spread_scale,
        "without_path": {k: round(v, 6) for k, v in baseline.items()},
        "calibration": {f"{a},{s}": {k: round(v, 6) for k, v in r.items()}
                        for (a, s), r in results.items()},
        "seconds": round(time.perf_counter() - t0, 3)}
    chosen = results.get((anchor_scale, spread_scale))
    log(f"cold-start mapper: fitted on {len(fit_items)} warm items in {report['seconds']}s "
        f"(loss {loss:.4f}); calibration anchor {anchor_scale}, spread {spread_scale}"
        + (f" (valid {valid_metric} on {len(users)} users: all {chosen['all']:.4f}, warm "
           f"{chosen['warm']:.4f}, cold {chosen['cold']:.4f}; without the path "
           f"{baseline['all']:.4f}, {baseline['warm']:.4f}, {baseline['cold']:.4f})"
           if chosen is not None else ""))
    return report


def _choose(grid: list[tuple[float, float]], results: dict[tuple[float, float],
            dict[str, float]], baseline: dict[str, float], calibrate_for: str,
            max_warm_loss: float) -> tuple[float, float]:
    """The calibration the settings ask for (the first of ties, in grid order)."""
    if calibrate_for == "all":
        return max(grid, key=lambda c: results[c]["all"])
    floor = (1.0 - max_warm_loss) * baseline["warm"]
    allowed = [c for c in grid if results[c]["warm"] >= floor]
    if not allowed:  # every candidate costs more: the one that costs least
        return max(grid, key=lambda c: results[c]["warm"])
    return max(allowed, key=lambda c: (results[c]["cold"], results[c]["all"]))


@contextmanager
def cold_path_off(model: Recommender) -> Iterator[None]:
    """Within the block, ``model`` represents items without interactions by its
    backbone's forward pass alone (for comparisons); a model without the path is left
    as it is."""
    if not isinstance(model, MultimodalRecommender):
        yield
        return
    before = model.use_cold_path
    model.use_cold_path = False
    try:
        yield
    finally:
        model.use_cold_path = before


def _training_pairs(dataset: Dataset, fit_items: np.ndarray) -> torch.Tensor:
    """(user, position in ``fit_items``) of every training interaction with a fitted item."""
    position = np.full(dataset.n_items, -1, dtype=np.int64)
    position[fit_items] = np.arange(len(fit_items))
    users, items = dataset.train_pairs()
    keep = position[items] >= 0
    return torch.from_numpy(np.stack([np.asarray(users)[keep], position[items[keep]]], 1))


def _regress(mapper: torch.nn.Module, features: dict[str, torch.Tensor],
             targets: torch.Tensor, scale: torch.Tensor, settings: ColdStartParams,
             generator: torch.Generator, user_rep: torch.Tensor,
             pairs: torch.Tensor | None) -> float:
    """Fit the mapper's weights: the scaled squared error to ``targets`` (the fitted
    items' trained representations), plus ``rank_weight`` x BPR where ``pairs`` are given:
    a mapped item against a random fitted item's trained representation, for a user who
    interacted with the first (``user_rep`` frozen)."""
    optimizer = torch.optim.Adam(mapper.net.parameters(), lr=settings.lr)
    n = len(targets)
    device = targets.device
    value = float("nan")
    with torch.enable_grad():
        for _ in range(settings.steps):
            pick = torch.randint(n, (min(settings.batch_size, n),),
                                 generator=generator).to(device)
            out = mapper.raw({m: f[pick] for m, f in features.items()})
            loss = ((out - targets[pick]) ** 2).sum(1).mean() / scale
            if pairs is not None and len(pairs):
                rows = pairs[torch.randint(len(pairs), (settings.batch_size,),
                                           generator=generator)].to(device)
                negatives = torch.randint(n, (len(rows),), generator=generator).to(device)
                users, positives = user_rep[rows[:, 0]].float(), rows[:, 1]
                mapped = mapper.raw({m: f[positives] for m, f in features.items()})
                margin = (users * mapped).sum(1) - (users * targets[negatives]).sum(1)
                loss = loss + settings.rank_weight * torch.nn.functional.softplus(
                    -margin).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
    return value


def _calibration_users(dataset: Dataset, stand_ins: np.ndarray,
                       generator: torch.Generator) -> np.ndarray:
    """Users with a validation interaction (at most CALIBRATION_USERS, seeded): users
    who have one with a stand-in item first, so that the sample sees cold items."""
    valid = sp.csr_matrix(dataset.valid)
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if not len(stand_ins) or not valid[:, stand_ins].nnz:
        return np.empty(0, dtype=np.int64)
    if len(users) > CALIBRATION_USERS:
        users = np.sort(users[torch.randperm(len(users), generator=generator).numpy()
                              [:CALIBRATION_USERS]])
    return users


@torch.no_grad()
def calibration_metrics(user_rep: torch.Tensor, item_rep: torch.Tensor,
                        stand_ins: np.ndarray, stand_in_reps: list[torch.Tensor],
                        dataset: Dataset, users: np.ndarray, metric: str,
                        batch_size: int = 1024) -> list[dict[str, float]]:
    """``metric`` on the validation interactions of ``users``, all items ranked in the
    whole catalogue (training items excluded), for each candidate representation of the
    stand-in items (``stand_in_reps[c]``: row j for item ``stand_ins[j]``; the other items
    keep ``item_rep``); per candidate, over all items, the warm ones and the stand-ins
    ({"all", "warm", "cold"}, as evaluate_ranking on each view would give).

    Per batch of users, the other items are scored and cut to their top k once; each
    candidate then scores only the stand-ins, and its top k is the merge of the two
    (exact: each part's top k holds every item of the whole top k that is in it, in the
    same order, value then lower index). That, and one ranking for the three views, is
    what keeps a 50-candidate grid cheap. ``batch_size`` users per batch, lowered as the
    evaluator's so that a batch's scores stay within searec.csr.MAX_BATCH_SCORES."""
    _, k = parse_metric(metric)
    device = item_rep.device
    valid = sp.csr_matrix(dataset.valid)
    train = sp.csr_matrix(dataset.train)
    n_items = item_rep.shape[0]
    is_stand_in = np.zeros(n_items, dtype=bool)
    is_stand_in[stand_ins] = True
    stand_in_index = torch.from_numpy(stand_ins).to(device)
    is_stand_in_t = torch.from_numpy(is_stand_in).to(device)
    users = users[np.diff(valid.indptr)[users] > 0]
    n_cold = np.asarray(valid[:, stand_ins].sum(1)).ravel()
    n_all = np.diff(valid.indptr)
    counted = {"all": int((n_all[users] > 0).sum()),
               "warm": int((n_all[users] - n_cold[users] > 0).sum()),
               "cold": int((n_cold[users] > 0).sum())}
    sums = [{view: 0.0 for view in counted} for _ in stand_in_reps]
    stand_in_train = train[:, stand_ins].tocsr()  # set-aside warm items have some
    batch_size = users_per_batch(batch_size, n_items)
    score_batch = ScoreBuffer(lambda rows, out: torch.matmul(rows, item_rep.T, out=out),
                              n_items, device)
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        u = user_rep[torch.from_numpy(batch).to(device)]
        scores = score_batch(u)
        scores[csr_rows_positions(train, batch, device)] = -torch.inf
        scores[:, stand_in_index] = -torch.inf
        other_vals, other_idx = topk_stable(scores, k)
        relevant = csr_rows_mask([valid], batch, n_items, device)
        n_rel = {"all": n_all[batch], "cold": n_cold[batch]}
        n_rel["warm"] = n_rel["all"] - n_rel["cold"]
        # per view, the batch's users it counts and their relevant counts: the same for
        # every candidate
        counts = {view: (torch.from_numpy(np.flatnonzero(n > 0)).to(device),
                         torch.from_numpy(n[n > 0]).to(device)) for view, n in n_rel.items()}
        own_train = csr_rows_positions(stand_in_train, batch, device)
        for c, reps in enumerate(stand_in_reps):
            part = u @ reps.T
            part[own_train] = -torch.inf
            vals, local = topk_stable(part, k)
            top = merge_topk([other_vals, vals], [other_idx, stand_in_index[local]], k)[1]
            hits = relevant.gather(1, top)
            cold_hits = is_stand_in_t[top]
            for view, view_hits in (("all", hits), ("warm", hits & ~cold_hits),
                                    ("cold", hits & cold_hits)):
                rows, n_relevant = counts[view]
                if len(rows):
                    values = per_user_metrics(view_hits[rows], n_relevant, [k])[metric]
                    sums[c][view] += float(values.sum())
        del scores, relevant  # freed before the next batch's are allocated
    return [{view: total / counted[view] if counted[view] else 0.0
             for view, total in row.items()} for row in sums]
