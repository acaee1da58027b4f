"""Held-out mutual information: fresh critics fitted on some items, evaluated on others.

The training losses are bounds computed by networks trained alongside the model, and the
linear-Gaussian MI of :mod:`searec.separation.diagnostics` is exact only for jointly
Gaussian variables (and blows up on nearly collinear parts). Here each estimate comes from
a critic trained from scratch on k-1 folds of the items and evaluated on the held-out
fold, k times:

- ``infonce``: a lower bound, log(K) - InfoNCE loss with a separable critic f(x)^T g(y)
  over batches of K held-out items (so never above log K);
- ``nwj``: a lower bound (Nguyen, Wainwright, Jordan), E_p[T] - E_q[exp(T - 1)] with a
  joint critic T(x, y) and q the product of the marginals (shuffled pairs);
- ``club``: an upper bound where its Gaussian q(y | x) fits, the full (all-pairs)
  CLUB mean_i log q(y_i | x_i) - mean_ij log q(y_j | x_i).

Both sides are standardised with the fitting folds' statistics first, so the estimate
does not depend on the parts' scale. Reported: mean, std and the value of every fold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from searec.separation.distancing.variational import pairwise_log_density

ESTIMATORS = ("infonce", "nwj", "club")


@dataclass(frozen=True)
class HeldoutSettings:
    folds: int = 3
    steps: int = 400  # critic updates per fold
    batch: int = 256  # items per critic update, and K of the held-out InfoNCE batches
    hidden: int = 64
    lr: float = 1e-3
    seed: int = 0


def _mlp(d_in: int, d_out: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, d_out))


def _fit(loss_fn: Any, modules: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor,
         s: HeldoutSettings, gen: torch.Generator) -> None:
    """Train the critic on 90% of the fitting items, keeping the weights that score best
    on the other 10% (checked every 25 steps): a critic that memorises its items would
    give a held-out estimate far below the MI."""
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=s.lr)
    n_val = max(2, len(x) // 10)
    order = torch.randperm(len(x), generator=gen)
    val, train = order[:n_val], order[n_val:]
    best, best_state = math.inf, [p.detach().clone() for p in params]
    for step in range(1, s.steps + 1):
        i = train[torch.randint(0, len(train), (min(s.batch, len(train)),), generator=gen)]
        loss = loss_fn(x[i], y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == s.steps:
            with torch.no_grad():
                score = float(loss_fn(x[val], y[val]))
            if score < best:
                best, best_state = score, [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, kept in zip(params, best_state, strict=True):
            p.copy_(kept)


def _infonce(x: torch.Tensor, y: torch.Tensor, xe: torch.Tensor, ye: torch.Tensor,
             s: HeldoutSettings, gen: torch.Generator) -> float:
    f, g = _mlp(x.shape[1], 32, s.hidden), _mlp(y.shape[1], 32, s.hidden)

    def loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = f(a) @ g(b).T
        return F.cross_entropy(logits, torch.arange(len(a)))

    _fit(loss, (f, g), x, y, s, gen)
    k = min(s.batch, len(xe))
    with torch.no_grad():
        values = [math.log(k) - float(loss(xe[j : j + k], ye[j : j + k]))
                  for j in range(0, len(xe) - k + 1, k)]
    return float(np.mean(values))


def _nwj(x: torch.Tensor, y: torch.Tensor, xe: torch.Tensor, ye: torch.Tensor,
         s: HeldoutSettings, gen: torch.Generator) -> float:
    t = _mlp(x.shape[1] + y.shape[1], 1, s.hidden)

    def bound(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        joint = t(torch.cat([a, b], dim=1)).squeeze(1)
        shuffled = b[torch.randperm(len(b), generator=gen)]
        marginal = t(torch.cat([a, shuffled], dim=1)).squeeze(1).clamp(max=30.0)
        return joint.mean() - torch.exp(marginal - 1.0).mean()

    _fit(lambda a, b: -bound(a, b), (t,), x, y, s, gen)
    with torch.no_grad():
        return float(np.mean([float(bound(xe, ye)) for _ in range(5)]))


def _club(x: torch.Tensor, y: torch.Tensor, xe: torch.Tensor, ye: torch.Tensor,
          s: HeldoutSettings, gen: torch.Generator) -> float:
    mu, logvar = _mlp(x.shape[1], y.shape[1], s.hidden), _mlp(x.shape[1], y.shape[1], s.hidden)

    def params(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mu(a), logvar(a).clamp(-8.0, 8.0)

    def nll(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        m, lv = params(a)
        return (0.5 * (b - m) ** 2 / lv.exp() + 0.5 * lv).sum(dim=1).mean()

    _fit(nll, (mu, logvar), x, y, s, gen)
    with torch.no_grad():
        m, lv = params(xe)
        pairs = pairwise_log_density(m, lv, ye)  # [i, j] = log q(y_i | x_j) + const
        return float(torch.diagonal(pairs).mean() - pairs.mean())


_ESTIMATE = {"infonce": _infonce, "nwj": _nwj, "club": _club}


def heldout_mi(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray,
               settings: HeldoutSettings | None = None,
               estimators: Sequence[str] = ESTIMATORS) -> dict[str, dict[str, Any]]:
    """I(x; y) in nats between paired rows, per estimator: {mean, std, folds}."""
    s = settings or HeldoutSettings()
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    if len(x) != len(y) or len(x) < 2 * s.folds:
        raise ValueError(f"need paired rows, at least {2 * s.folds}; got {len(x)}, {len(y)}")
    unknown = set(estimators) - set(ESTIMATORS)
    if unknown:
        raise ValueError(f"unknown estimators {sorted(unknown)}; known: {ESTIMATORS}")
    order = np.random.default_rng(s.seed).permutation(len(x))
    folds = np.array_split(order, s.folds)
    values: dict[str, list[float]] = {name: [] for name in estimators}
    state = torch.get_rng_state()
    try:
        for k, held in enumerate(folds):
            fit = np.concatenate([f for j, f in enumerate(folds) if j != k])
            xs, ys = _standardizer(x[fit]), _standardizer(y[fit])
            parts = xs(x[fit]), ys(y[fit]), xs(x[held]), ys(y[held])
            for name in estimators:  # each critic starts from the same seed per fold
                gen = torch.Generator().manual_seed(s.seed * 1000 + k)
                torch.manual_seed(s.seed * 1000 + k)  # critics' initial weights
                values[name].append(_ESTIMATE[name](*parts, s, gen))
    finally:
        torch.set_rng_state(state)  # a diagnostic never moves the run's random stream
    return {name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": v}
            for name, v in values.items()}


def _standardizer(fit: torch.Tensor) -> Any:
    mean = fit.mean(dim=0, keepdim=True)
    std = fit.std(dim=0, keepdim=True).clamp_min(1e-6)
    return lambda t: (t - mean) / std
