"""The contract every MI estimator meets, as functions a plug-in author can run.

``check_alignment(cls)`` / ``check_distancing(cls)`` run the whole suite on one estimator
class: on Gaussians with known mutual information a lower bound stays below the MI and
close to it, an upper bound stays above it where its estimator can fit, a proxy stays in
its stated range, and every value rises with the MI; gradients reach both inputs and never
the estimator's own fitted network; values are finite at batch sizes 2 and 4096. searec's
own estimators run it in tests/contract/test_estimator_contract.py. A failed check is an
AssertionError naming the estimator.
"""

from __future__ import annotations

import math

import torch

from searec.optim import fit_auxiliary
from searec.separation import AlignmentEstimator, DistancingEstimator, EstimatorParams

RHOS = (0.3, 0.6, 0.9)
DIM = 2


def gaussians(n: int, rho: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x ~ N(0, I), y = rho x + sqrt(1 - rho^2) e: I(x; y) = -d/2 log(1 - rho^2)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, DIM, generator=g)
    return x, rho * x + math.sqrt(1 - rho**2) * torch.randn(n, DIM, generator=g)


def true_mi(rho: float) -> float:
    return -DIM / 2 * math.log(1 - rho**2)


# ------------------------------------------------------------------ alignment


def _critic() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(DIM, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 16))


def alignment_estimates(cls: type[AlignmentEstimator]) -> dict[float, float]:
    """Train two critics with the estimator's loss per correlation; its lower bound on
    fresh samples (mean over batches of 256)."""
    out = {}
    for rho in RHOS:
        torch.manual_seed(0)
        x, y = gaussians(2048, rho, seed=0)
        xt, yt = gaussians(2048, rho, seed=1)
        est, fa, fb = cls(_with(cls)), _critic(), _critic()
        opt = torch.optim.Adam([*fa.parameters(), *fb.parameters()], lr=1e-2)
        for _ in range(150):
            i = torch.randint(0, 2048, (256,))
            loss = est(fa(x[i]), fb(y[i]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            bounds = [est.lower_bound(fa(xt[j : j + 256]), fb(yt[j : j + 256]))
                      for j in range(0, 2048, 256)]
        out[rho] = float(torch.stack(bounds).mean())
    return out


def _with(cls: type, **settings: object) -> EstimatorParams:
    """``cls``'s section with those of ``settings`` it has (the rest: its defaults)."""
    fields = cls.Params.model_fields
    return cls.Params(name=cls.name, **{k: v for k, v in settings.items() if k in fields})


def check_alignment(cls: type[AlignmentEstimator]) -> None:
    est = cls(_with(cls))
    # known MI: a lower bound, never above log(n), close to MI, rising with it
    values = alignment_estimates(cls)
    for rho, v in values.items():
        assert v <= true_mi(rho) + 0.1, (cls.name, rho, v, true_mi(rho))
        assert v <= math.log(256) + 1e-6
        assert v >= 0.5 * true_mi(rho) - 0.05, (cls.name, rho, v)
    assert values[RHOS[0]] < values[RHOS[1]] < values[RHOS[2]], (cls.name, values)
    # gradient flow to both sides; bounded values at batch sizes 2 and 4096
    for n in (2, 4096):
        za = torch.randn(n, 8, requires_grad=True)
        zb = torch.randn(n, 8, requires_grad=True)
        loss = est(za, zb)
        assert loss.ndim == 0 and torch.isfinite(loss), (cls.name, n)
        loss.backward()
        assert za.grad is not None and za.grad.abs().sum() > 0, (cls.name, n)
        assert zb.grad is not None and zb.grad.abs().sum() > 0, (cls.name, n)
        z = torch.randn(n, 8)
        sharp = cls(_with(cls, temperature=0.01))  # where it has one: the largest logits
        assert float(sharp.lower_bound(z, z)) <= math.log(n) + 1e-4, (cls.name, n)


# ------------------------------------------------------------------ distancing


def _fitted(cls: type[DistancingEstimator], x: dict[str, torch.Tensor],
            y: dict[str, torch.Tensor], steps: int = 150) -> DistancingEstimator:
    """The estimator after ``steps`` of its own fitting (if it has any) on (x, y)."""
    dim = next(iter(x.values())).shape[1]
    # fitted networks fit fast here (the defaults are for a training run's many steps)
    est = cls(list(x), _with(cls, dim=dim, q_hidden=16, q_steps=1, q_lr=2e-2))
    objectives = est.objectives()
    optimisers = [torch.optim.Adam(o.parameters, lr=o.lr) for o in objectives]
    for _ in range(steps if objectives else 0):
        est(x, y)
        for o, opt in zip(objectives, optimisers, strict=True):
            fit_auxiliary(o, opt)
    return est


def check_distancing(cls: type[DistancingEstimator]) -> None:
    assert cls.kind in ("upper_bound", "proxy")
    assert cls.kind == "upper_bound" or cls.value_range is not None, \
        f"{cls.name}: a proxy states the range of its values"
    # known MI: an upper bound (where a Gaussian q with tanh-bounded log-variance can fit
    # the conditional variance 1 - rho^2 >= 1/e) or a proxy; either rises with the MI
    values = {}
    for rho in RHOS:
        torch.manual_seed(0)
        x, y = gaussians(2048, rho, seed=0)
        est = _fitted(cls, {"m": x}, {"m": y})
        xt, yt = gaussians(2048, rho, seed=1)
        with torch.no_grad():
            values[rho] = float(torch.stack([est({"m": xt}, {"m": yt})["m"]
                                             for _ in range(10)]).mean())
        if cls.kind == "upper_bound" and 1 - rho**2 >= math.exp(-1):
            assert values[rho] >= true_mi(rho) - 0.05, (cls.name, rho, values[rho])
    assert values[RHOS[0]] < values[RHOS[1]] < values[RHOS[2]], (cls.name, values)
    # gradient flow and bounded values at batch sizes 2 and 4096, three modalities, on
    # strongly dependent parts (a clamped bound of independent ones is 0, with no gradient)
    names = ["a", "b", "c"]
    for n in (2, 4096):
        torch.manual_seed(0)
        x = {m: torch.randn(n, 4) for m in names}
        y = {m: v + 0.3 * torch.randn(n, 4) for m, v in x.items()}
        est = _fitted(cls, x, y, steps=50)
        x = {m: v.clone().requires_grad_() for m, v in x.items()}
        y = {m: v.clone().requires_grad_() for m, v in y.items()}
        own = [p for o in est.objectives() for p in o.parameters]
        for p in own:
            p.grad = None  # left by the fitting steps
        out = est(x, y)
        assert list(out) == names, cls.name
        for m, v in out.items():
            assert v.ndim == 0 and torch.isfinite(v), (cls.name, n, m)
            if cls.value_range is not None:
                low, high = cls.value_range
                assert low - 1e-6 <= float(v.detach()) <= high + 1e-6, (cls.name, n, m)
        torch.stack(list(out.values())).sum().backward()
        # the estimator's own fitted parameters never get gradient from its values
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in own), cls.name
        if n > 2:  # two rows: the one permutation may be the identity, a bound of 0
            for m in names:
                assert x[m].grad is not None and x[m].grad.abs().sum() > 0, (cls.name, m)
                assert y[m].grad is not None and y[m].grad.abs().sum() > 0, (cls.name, m)
        for o in est.objectives():
            before = [p.detach().clone() for p in o.parameters]
            value = fit_auxiliary(o, torch.optim.Adam(o.parameters, lr=o.lr))
            assert value is not None and math.isfinite(value), (cls.name, n)
            assert any(not torch.equal(a, p) for a, p in zip(before, o.parameters,
                                                             strict=True))
