"""Adam, fused or not, for every optimiser searec builds (the model's and those of its
auxiliary objectives, e.g. CLUB's q), and the declaration of an auxiliary objective.

PyTorch's fused Adam updates all parameters in one kernel per step instead of about ten
small operations per parameter tensor. The arithmetic is Adam's, but rounding differs in
the last bits from the default implementation, so a run and its resume must not switch
kernels silently: :func:`load_adam_state` keeps the kernel the optimiser was built with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

FUSED_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0,
         fused: bool = False) -> torch.optim.Adam:
    """Adam over ``params``; fused when asked and every parameter is a floating tensor
    on a device with a fused kernel (else torch's default implementation)."""
    params = list(params)
    fused = fused and all(p.is_floating_point() and p.device.type in FUSED_DEVICES
                          for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay,
                            fused=True if fused else None)


def is_fused(optimizer: torch.optim.Optimizer) -> bool:
    return bool(optimizer.param_groups[0].get("fused"))


def load_adam_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(state)``, keeping ``optimizer``'s own kernel choice.

    torch would take ``fused``/``foreach`` from the saved groups, so a checkpoint written
    with the other kernel would switch the resumed run's kernel."""
    groups = [{**saved, "fused": own.get("fused"), "foreach": own.get("foreach")}
              for saved, own in zip(state["param_groups"], optimizer.param_groups,
                                    strict=False)]
    groups += state["param_groups"][len(groups):]  # a count mismatch is torch's error
    optimizer.load_state_dict({**state, "param_groups": groups})


@dataclass
class AuxiliaryObjective:
    """An objective a model trains beside its main loss, with an Adam of its own.

    For example CLUB's variational network q, fitted after every main step to the pairs
    that step produced. A model declares these (``Recommender.auxiliary_objectives``); the
    trainer builds, fuses, checkpoints, resumes and DDP-averages their optimisers, and
    the main optimiser never sees their parameters.

    - ``loss()``: the per-term losses to fit now, a 1-d tensor (their sum is minimised,
      their mean logged under ``name``), or None when there is nothing to fit;
    - ``steps``: optimisation steps after each main step;
    - ``finish()``: called after the steps (e.g. to drop the pairs just fitted).
    """

    name: str
    parameters: list[torch.nn.Parameter]
    lr: float
    steps: int
    loss: Callable[[], torch.Tensor | None]
    finish: Callable[[], None] = field(default=lambda: None)


def fit_auxiliary(
    objective: AuxiliaryObjective, optimizer: torch.optim.Optimizer,
    reduce_gradients: Callable[[list[torch.nn.Parameter]], None] = lambda _params: None,
) -> float | None:
    """Run ``objective.steps`` optimiser steps; the mean of the last step's terms (None if
    nothing was fitted). ``reduce_gradients`` averages gradients across processes."""
    last: tuple[torch.Tensor, int] | None = None
    for _ in range(objective.steps):
        terms = objective.loss()
        if terms is None:
            break
        loss = terms.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        reduce_gradients(objective.parameters)
        optimizer.step()
        last = (loss.detach(), max(terms.numel(), 1))
    objective.finish()
    return None if last is None else float(last[0]) / last[1]
