"""Adam, fused or not, for every optimiser searec builds (the model's and CLUB's q).

PyTorch's fused Adam updates all parameters in one kernel per step instead of about ten
small operations per parameter tensor. The arithmetic is Adam's, but rounding differs in
the last bits from the default implementation, so a run and its resume must not switch
kernels silently: :func:`load_adam_state` keeps the kernel the optimiser was built with.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def rebuild_adam(optimizer: torch.optim.Adam, fused: bool) -> torch.optim.Adam:
    """The same Adam (parameters, hyper-parameters, state) with the kernel ``fused``."""
    group = optimizer.param_groups[0]
    new = adam(group["params"], group["lr"], group["weight_decay"], fused)
    load_adam_state(new, optimizer.state_dict())
    return new
