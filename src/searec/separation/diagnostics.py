"""How separated are the parts? Estimates that do not depend on the trained estimators.

The losses themselves are bounds computed by networks trained alongside the model (CLUB's
q, the contrastive heads), so they can look good while q is poor. Two kinds of estimate
here: held-out MI from fresh critics (:func:`heldout_separation_mi`, used by
``searec diagnose``), and, cheap enough for every evaluation, the linear-Gaussian
mutual information

    I(X; Y) = 1/2 (log det S_x + log det S_y - log det S_xy)

from sample covariances, exact for jointly Gaussian variables and otherwise only the MI
that linear dependence carries: it grows without bound as the two parts become nearly
collinear, so read it as a linear-dependence index, not as the MI. It is logged at every
evaluation (``diag_mi_*`` columns of history.csv) and by ``searec diagnose``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from searec.separation.component import Separation
from searec.separation.heldout import HeldoutSettings, heldout_mi


def gaussian_mi(x: torch.Tensor, y: torch.Tensor, ridge: float = 1e-4) -> float:
    """Gaussian MI in nats between the rows of x (n, dx) and y (n, dy).

    A ridge of ``ridge`` times the mean variance is added to each covariance so that
    constant or collinear columns do not make a determinant vanish.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y need the same number of rows, got {x.shape[0]}, {y.shape[0]}")
    joint = torch.cat([x, y], dim=1).double()
    joint = joint - joint.mean(dim=0, keepdim=True)
    cov = joint.T @ joint / max(joint.shape[0] - 1, 1)
    cov = cov + ridge * cov.diagonal().mean().clamp_min(1e-12) * torch.eye(
        cov.shape[0], dtype=cov.dtype, device=cov.device)
    dx = x.shape[1]
    mi = 0.5 * (torch.logdet(cov[:dx, :dx]) + torch.logdet(cov[dx:, dx:]) - torch.logdet(cov))
    return max(float(mi), 0.0)


def sample_items(n_items: int, max_items: int, seed: int = 0) -> torch.Tensor:
    """A fixed subset of items (all when there are at most ``max_items``)."""
    if n_items <= max_items:
        return torch.arange(n_items)
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.sort(rng.choice(n_items, size=max_items, replace=False)))


@torch.no_grad()
def separation_parts(
    separation: Separation, features: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(generic, unique) item representations per modality."""
    p = separation.project(features)
    generic, unique = {}, {}
    for m, x in p.items():
        generic[m], unique[m] = separation.split[m].parts(x)  # type: ignore[operator]
    return generic, unique


@torch.no_grad()
def separation_diagnostics(
    separation: Separation, features: dict[str, torch.Tensor], max_items: int = 4096
) -> dict[str, float]:
    """Gaussian MI of generic vs unique within each modality and of generic (and unique)
    parts across each pair of modalities, on a fixed item sample."""
    items = sample_items(next(iter(features.values())).shape[0], max_items)
    generic, unique = separation_parts(
        separation, {m: f[items.to(f.device)] for m, f in features.items()})
    out = {f"mi_generic_unique_{m}": gaussian_mi(generic[m], unique[m]) for m in generic}
    for a, b in itertools.combinations(generic, 2):
        out[f"mi_generic_{a}_{b}"] = gaussian_mi(generic[a], generic[b])
        out[f"mi_unique_{a}_{b}"] = gaussian_mi(unique[a], unique[b])
    return out


def heldout_separation_mi(
    separation: Separation, features: dict[str, torch.Tensor], max_items: int = 4096,
    settings: HeldoutSettings | None = None,
) -> dict[str, dict[str, Any]]:
    """Held-out MI (fresh critics, k folds; see :mod:`searec.separation.heldout`) of
    generic vs unique within each modality and of the generic parts of each pair."""
    items = sample_items(next(iter(features.values())).shape[0], max_items)
    generic, unique = separation_parts(
        separation, {m: f[items.to(f.device)] for m, f in features.items()})
    out = {f"generic_unique_{m}": heldout_mi(generic[m].cpu(), unique[m].cpu(), settings)
           for m in generic}
    for a, b in itertools.combinations(generic, 2):
        out[f"generic_{a}_{b}"] = heldout_mi(generic[a].cpu(), generic[b].cpu(), settings)
    return out


def heldout_means(heldout: dict[str, dict[str, Any]]) -> dict[str, float]:
    """:func:`heldout_separation_mi`'s result flattened to ``heldout_<estimator>_<pair>``
    -> its mean over folds (the columns of history.csv and experiment results)."""
    return {f"heldout_{name}_{pair}": value["mean"]
            for pair, estimates in heldout.items() for name, value in estimates.items()}


def probe_r2(parts: np.ndarray, factors: np.ndarray, folds: int = 5, ridge: float = 1e-3,
             seed: int = 0) -> float:
    """Held-out R^2 of a ridge-regularised linear probe predicting ``factors`` (n, k) from
    ``parts`` (n, d), k-fold: how much of the factors the parts carry, linearly."""
    x = np.asarray(parts, dtype=np.float64)
    y = np.asarray(factors, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(x))
    resid = total = 0.0
    for held in np.array_split(order, folds):
        fit = np.setdiff1d(order, held)
        mx, my = x[fit].mean(axis=0), y[fit].mean(axis=0)
        xf, yf = x[fit] - mx, y[fit] - my
        coef = np.linalg.solve(xf.T @ xf + ridge * len(fit) * np.eye(x.shape[1]), xf.T @ yf)
        pred = (x[held] - mx) @ coef + my
        resid += float(((y[held] - pred) ** 2).sum())
        total += float(((y[held] - my) ** 2).sum())
    return 1.0 - resid / total


@torch.no_grad()
def planted_recovery(separation: Separation, features: dict[str, torch.Tensor],
                     planted: dict[str, np.ndarray]) -> dict[str, float]:
    """For data with planted factors (``searec.data.synthetic.planted_factors``): held-out
    R^2 of linear probes from each modality's generic part to the planted generic factors
    and from its unique part to its planted unique factors, and the leaks the other way
    (generic part -> unique factors, unique part -> generic factors)."""
    generic, unique = separation_parts(separation, features)
    out = {}
    for m in generic:
        g, u = generic[m].double().cpu().numpy(), unique[m].double().cpu().numpy()
        out[f"generic_{m}_to_generic"] = probe_r2(g, planted["generic"])
        out[f"unique_{m}_to_unique"] = probe_r2(u, planted[f"unique_{m}"])
        out[f"generic_{m}_to_unique"] = probe_r2(g, planted[f"unique_{m}"])
        out[f"unique_{m}_to_generic"] = probe_r2(u, planted["generic"])
    return out


@torch.no_grad()
def projection_panels(
    separation: Separation, features: dict[str, torch.Tensor], max_items: int = 1000
) -> dict[str, dict[str, np.ndarray]]:
    """2-D PCA coordinates for plots, in the spaces where the model compares the parts:

    - ``alignment``: each modality's generic part through its alignment head (the space
      where generic parts of different modalities are pulled together);
    - ``distancing <m>``: modality m's generic and unique parts through the distancing
      transforms (the space where CLUB or neg_l2 pushes them apart).

    A panel is absent when its component is off, and the distancing panels also when its
    estimator compares the parts as they are (hsic): they then share no space to plot.
    """
    items = sample_items(next(iter(features.values())).shape[0], max_items)
    separation.eval()
    generic, unique = separation_parts(
        separation, {m: f[items.to(f.device)] for m, f in features.items()})
    panels: dict[str, dict[str, np.ndarray]] = {}
    if separation.alignment.active:
        z = {f"generic {m}": separation.alignment.heads[m](g) for m, g in generic.items()}
        panels["alignment"] = _pca_2d(z)
    dist = separation.distancing
    if dist.estimator is not None and dist.estimator.transformed:
        for m in generic:
            panels[f"distancing {m}"] = _pca_2d({
                "generic": dist.generic_tf[m](generic[m]),
                "unique": dist.unique_tf[m](unique[m]),
            })
    return panels


def _pca_2d(groups: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """One PCA fitted on all groups together, so their positions are comparable."""
    stacked = torch.cat(list(groups.values())).double()
    mean = stacked.mean(dim=0, keepdim=True)
    _, _, v = torch.linalg.svd(stacked - mean, full_matrices=False)
    basis = v[:2].T
    return {name: ((x.double() - mean) @ basis).cpu().numpy() for name, x in groups.items()}
