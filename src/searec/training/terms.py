"""How much each separately measured loss term does: its share of the gradient, and
which terms were inert over a run.

A model's :class:`~searec.models.base.LossResult` names the terms to measure (SEA's
weighted alignment and distancing terms); once per epoch the trainer takes each term's
own gradient on the main parameters, before the main backward pass, and logs
||g_term|| / (||g_term|| + ||g_rest||) as history.csv ``term_grad_share_<term>``. After
training, :func:`inert_terms` reads the history for terms that did next to nothing.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from searec.training import distributed

TermGradients = dict[str, tuple[torch.Tensor | None, ...]]


def term_gradients(terms: dict[str, torch.Tensor], params: list[torch.nn.Parameter]
                   ) -> TermGradients:
    """Each term's own gradient on ``params`` (before the main backward, which then frees
    the graph). Only the terms' own subgraphs are traversed."""
    grads = {name: torch.autograd.grad(t, params, retain_graph=True, allow_unused=True)
             for name, t in terms.items() if t.requires_grad}
    # under torchrun the main gradients are averaged over ranks; average these too
    distributed.average_tensors([g for gs in grads.values() for g in gs if g is not None])
    return grads


def gradient_shares(term_grads: TermGradients, params: list[torch.nn.Parameter]
                    ) -> dict[str, float]:
    """||g_term|| / (||g_term|| + ||g_rest||) on the parameters a term shares with the rest
    of the loss, g_rest being the total gradient (``params``' .grad after the main
    backward) minus every measured term's."""
    if not term_grads:
        return {}
    rest: list[torch.Tensor | None] = []
    for i, p in enumerate(params):
        touched = [grads[i] for grads in term_grads.values() if grads[i] is not None]
        if p.grad is None or not touched:
            # no term reaches it, so no share reads it: no copy of a gradient as large as
            # the parameter (SEA's user table: 1.4 GiB at 1M users)
            rest.append(None)
            continue
        g = p.grad.detach().clone()
        for term_grad in touched:
            g -= term_grad
        rest.append(g)
    shares = {}
    for name, grads in term_grads.items():
        own = other = 0.0
        for g_term, g_rest in zip(grads, rest, strict=True):
            if g_term is None or g_rest is None or not bool(g_rest.any()):
                continue  # not shared with the rest of the loss
            own += float(g_term.double().pow(2).sum())
            other += float(g_rest.double().pow(2).sum())
        total = math.sqrt(own) + math.sqrt(other)
        shares[f"grad_share_{name}"] = math.sqrt(own) / total if total > 0 else 0.0
    return shares


# A loss term is called inert when, averaged over the epochs, it gave less than this share
# of the gradient on the parameters it shares with the rest of the loss ...
INERT_GRAD_SHARE = 0.01
# ... or when its bound was clamped (no gradient at all) in more than this share of steps.
INERT_CLAMPED = 0.9


def inert_terms(history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The loss terms that did next to nothing in a run, from its history rows
    (``term_grad_share_<term>``, ``term_clamped_<part>``): [{term, kind, why}], kind
    ``small_gradient`` or ``clamped``."""
    columns = dict.fromkeys(k for row in history for k in row)
    found = []
    for col in columns:
        values = [float(r[col]) for r in history if r.get(col) not in (None, "")]
        if not values:
            continue
        mean = sum(values) / len(values)
        if col.startswith("term_grad_share_") and mean < INERT_GRAD_SHARE:
            found.append({"term": col[len("term_grad_share_"):], "kind": "small_gradient",
                          "why": f"{mean:.2%} of the gradient on the parameters it shares "
                                 "with the rest of the loss"})
        elif col.startswith("term_clamped_") and mean > INERT_CLAMPED:
            found.append({"term": col[len("term_clamped_"):], "kind": "clamped",
                          "why": f"its bound was clamped at 0 (no gradient) in {mean:.0%} "
                                 "of steps"})
    return found
