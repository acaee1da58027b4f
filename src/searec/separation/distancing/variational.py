"""The variational network q(y | x) shared by CLUB and L1Out, and their common base.

q(y | x) = N(mu(x), exp(logvar(x))): two small MLPs x -> hidden -> y, the log-variance
tanh-bounded (as in the reference). An estimator built on it keeps one q per modality
(the copies of one stacked :class:`GaussianQ`), fitted to that modality's own (x, y)
pairs of the last step by the auxiliary objective ``q_nll``; with
``q_pairs="reference"`` one shared q is fitted to cross-modal pairs, as the authors' code
does (for parity runs only: the bound is then not the bound).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from searec.errors import ConfigError
from searec.optim import AuxiliaryObjective
from searec.separation.alignment import ordered_pairs
from searec.separation.distancing.base import (
    DistancingEstimator,
    DistancingParams,
    TransformedParams,
)


class VariationalParams(TransformedParams):
    """Settings of an estimator built on a fitted q(y | x) (CLUB, L1Out)."""

    q_hidden: int = Field(8, gt=0, description="Hidden width of q's two MLPs.")
    q_steps: int = Field(5, ge=0, description="q updates per training batch (the "
                         "reference code uses 50; see docs/performance.md).")
    q_lr: float = Field(1e-4, gt=0, description="Learning rate of q's own Adam (the "
                        "reference uses its model rate, 1e-4).")
    q_pairs: Literal["within", "reference"] = Field(
        "within", description="within: one q per modality trained on its (generic, unique) "
        "pairs. reference: one shared q trained on cross-modal pairs (the authors' code; "
        "for parity runs only).")
    q_standardize: bool = Field(
        False, description="Standardise both parts (batch statistics, held constant) "
        "before q: q's tanh-bounded log-variance can only fit variances in [e^-1, e], and "
        "the parts it is given start far below (about 0.01 to 0.13 per dimension on "
        "TikTok). The reference: false.")


class GaussianQ(nn.Module):
    """q(y | x) = N(mu(x), exp(logvar(x))): two small MLPs x -> hidden -> y, the
    log-variance tanh-bounded.

    ``copies`` independent networks share one set of stacked weights, so all modalities'
    q networks run in one batched product per layer: a (copies, n, x_dim) input goes
    through every copy, a (n, x_dim) input through copy ``copy`` alone. Each copy is
    initialised like ``nn.Linear`` layers built in the order mu, logvar."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 8, copies: int = 1) -> None:
        super().__init__()
        self.copies = copies
        # the order of this dict is the initialisation order of each copy
        shapes = {"mu_in": (hidden, x_dim), "mu_out": (y_dim, hidden),
                  "logvar_in": (hidden, x_dim), "logvar_out": (y_dim, hidden)}
        for name, (rows, cols) in shapes.items():
            self.register_parameter(f"{name}_weight",
                                    nn.Parameter(torch.empty(copies, rows, cols)))
            self.register_parameter(f"{name}_bias", nn.Parameter(torch.empty(copies, rows)))
        with torch.no_grad():
            for c in range(copies):
                for name in shapes:
                    weight = getattr(self, f"{name}_weight")[c]
                    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
                    bound = 1.0 / math.sqrt(weight.shape[1])
                    nn.init.uniform_(getattr(self, f"{name}_bias")[c], -bound, bound)

    def forward(self, x: torch.Tensor, copy: int | None = None,
                detach: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(. | x). ``detach``: q's parameters get no gradient."""
        p = {name: t.detach() if detach else t
             for name, t in self.named_parameters(recurse=False)}

        if x.dim() == 3:
            if x.shape[0] != self.copies:
                raise ValueError(f"expected {self.copies} stacked inputs, got {x.shape[0]}")

            def layer(name: str, h: torch.Tensor) -> torch.Tensor:
                return torch.baddbmm(p[f"{name}_bias"].unsqueeze(1), h,
                                     p[f"{name}_weight"].transpose(1, 2))
        else:
            if copy is None and self.copies != 1:
                raise ValueError(f"a 2-d input needs copy= (this q has {self.copies} copies)")
            c = copy or 0

            def layer(name: str, h: torch.Tensor) -> torch.Tensor:
                return F.linear(h, p[f"{name}_weight"][c], p[f"{name}_bias"][c])

        mu = layer("mu_out", F.relu(layer("mu_in", x)))
        logvar = torch.tanh(layer("logvar_out", F.relu(layer("logvar_in", x))))
        return mu, logvar


def gaussian_log_ratio_terms(
    mu: torch.Tensor, logvar: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Per-sample log q(y | x) up to the constant -d/2 log(2 pi) (cancels in CLUB)."""
    return (-((mu - y) ** 2) / logvar.exp() / 2.0 - logvar / 2.0).sum(dim=-1)


def pairwise_log_density(mu: torch.Tensor, logvar: torch.Tensor, y: torch.Tensor
                         ) -> torch.Tensor:
    """log q(y_i | x_j) up to a constant for every pair -> (n_i, n_j).

    Expands sum_d (y_id - mu_jd)^2 / var_jd into three matrix products, so no
    (n, n, d) tensor is built (10x faster at n = 512, d = 32, and n^2 memory instead of n^2 d).
    """
    inv = torch.exp(-logvar)
    sq = (y * y) @ inv.T - 2.0 * (y @ (mu * inv).T) + (mu * mu * inv).sum(dim=1)[None, :]
    return -0.5 * sq - 0.5 * logvar.sum(dim=1)[None, :]


def q_nll(q: GaussianQ, x: torch.Tensor, y: torch.Tensor,
          copy: int | None = None) -> torch.Tensor:
    """q's training loss: negative mean log-likelihood of y given x (one per copy for
    stacked inputs)."""
    mu, logvar = q(x, copy=copy)
    return -gaussian_log_ratio_terms(mu, logvar, y).mean(dim=-1)


def _standardized(t: torch.Tensor) -> torch.Tensor:
    """Columns to mean 0, std 1 with the batch's statistics held constant (gradient flows
    through ``t``, not through the statistics): q's log-variance is tanh-bounded, so it
    can only fit variances in [e^-1, e]."""
    mean = t.detach().mean(dim=0, keepdim=True)
    std = t.detach().std(dim=0, keepdim=True).clamp_min(1e-6) if len(t) > 1 else 1.0
    return (t - mean) / std


class VariationalEstimator(DistancingEstimator):
    """Base of estimators built on a fitted q(y | x): keeps q, remembers each step's pairs
    and declares q's fitting step (``q_nll``)."""

    Params = VariationalParams
    params: VariationalParams
    clamped_hint = ("standardise the features, give q more width or steps "
                    "(model.separation.distancing.q_hidden, q_steps, or q_standardize=true), "
                    "or use another estimator (model.separation.distancing=hsic or neg_l2)")

    def __init__(self, modalities: list[str], params: DistancingParams | None = None,
                 order: list[str] | None = None) -> None:
        super().__init__(modalities, params, order)
        s = self.params
        if s.q_pairs == "reference" and len(self.names) < 2:
            raise ConfigError(
                "config key 'model.separation.distancing.q_pairs': reference fits one shared "
                "q to pairs across modalities and needs at least two; this dataset has one "
                f"({', '.join(self.names)}). Use q_pairs=within")
        self.pair_order = ordered_pairs(self.names, order)
        self.q = GaussianQ(s.dim, s.dim, s.q_hidden,
                           len(self.names) if s.q_pairs == "within" else 1)
        self._pending: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._stats: dict[str, torch.Tensor] = {}

    def q_copy(self, modality: str) -> int:
        """Which copy of q scores ``modality``."""
        return self.names.index(modality) if self.params.q_pairs == "within" else 0

    def forward(self, x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
        if self.params.q_standardize:
            x, y = ({m: _standardized(t[m]) for m in self.names} for t in (x, y))
        # q is fitted after the step, outside any autocast (train.precision): in float32
        self._pending = {m: (x[m].detach().float(), y[m].detach().float())
                         for m in self.names}
        raw = self.bounds(x, y)
        with torch.no_grad():
            self._stats = {f"clamped_{m}": (b < 0).float() for m, b in raw.items()}
            self._stats.update({f"q_nll_excess_{m}": self.q_nll_excess(m) for m in self.names})
        return {m: b.clamp(min=0.0) for m, b in raw.items()}  # MI is not negative

    # (q, x, y, copy=..., clamp=False) -> the estimate of I(x; y) with q held fixed
    estimate: ClassVar[Callable[..., torch.Tensor]]

    def bounds(self, x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]
               ) -> dict[str, torch.Tensor]:
        """The unclamped estimate per modality."""
        return {m: type(self).estimate(self.q, x[m], y[m], copy=self.q_copy(m), clamp=False)
                for m in self.names}

    @torch.no_grad()
    def q_nll_excess(self, modality: str) -> torch.Tensor:
        """How well q fits this step's pairs of ``modality``: q's NLL of y given x minus the
        NLL of a diagonal Gaussian fitted to y alone (nats per item). Below 0: q explains y
        from x; 0 or above: q does no better than ignoring x (its bound is then noise)."""
        x, y = self._pending[modality]
        nll_q = q_nll(self.q, x, y, copy=self.q_copy(modality))
        var = y.var(dim=0, unbiased=False).clamp_min(1e-12)
        nll_gaussian = 0.5 * (var.log() + 1.0).sum()  # same constant dropped as in q_nll
        return nll_q - nll_gaussian

    def step_stats(self) -> dict[str, torch.Tensor]:
        return dict(self._stats)

    def training_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """What q is fitted to: each modality's (x_m, y_m), or in reference mode the
        cross-modal (x_a, x_b) and (y_a, y_b) of every pair (a, b), q modelling q(b | a)."""
        if self.params.q_pairs == "within":
            return [self._pending[m] for m in self.names]
        pairs = []
        for a, b in self.pair_order:
            pairs.append((self._pending[a][0], self._pending[b][0]))  # generic_a, generic_b
            pairs.append((self._pending[a][1], self._pending[b][1]))  # unique_a, unique_b
        return pairs

    def _q_loss(self) -> torch.Tensor | None:
        if not self._pending:
            return None
        pairs = self.training_pairs()
        if self.params.q_pairs == "within":  # all modalities' q at once: pair m fits copy m
            return q_nll(self.q, torch.stack([x for x, _ in pairs]),
                         torch.stack([y for _, y in pairs]))
        return torch.stack([q_nll(self.q, x, y, copy=0) for x, y in pairs])

    def _forget(self) -> None:
        self._pending = {}

    def objectives(self) -> list[AuxiliaryObjective]:
        if self.params.q_steps == 0:
            return []
        return [AuxiliaryObjective("q_nll", list(self.q.parameters()), self.params.q_lr,
                                   self.params.q_steps, self._q_loss, self._forget)]
