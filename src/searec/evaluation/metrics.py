"""Vectorised top-k ranking metrics (no Python loop over users).

Input: ``hits`` (users x K_max, bool): whether the item at each rank is a held-out item,
and ``n_relevant`` (users,): how many held-out items each user has (>= 1).

- recall@K    = hits in top K / n_relevant
- precision@K = hits in top K / K
- hit@K       = 1 if any hit in top K
- ndcg@K      = sum_r hit_r / log2(r + 2) / IDCG, IDCG over min(n_relevant, K) ideal hits
- map@K       = sum_r precision@r * hit_r / min(n_relevant, K)   (MMRec/RecBole definition)
"""

from __future__ import annotations

import torch

METRICS = ("recall", "ndcg", "precision", "map", "hit")


def per_user_metrics(
    hits: torch.Tensor, n_relevant: torch.Tensor, ks: list[int]
) -> dict[str, torch.Tensor]:
    """Per-user values of every metric at every K -> {'recall@10': (users,), ...}."""
    hits = hits.to(torch.float64)
    n_rel = n_relevant.to(torch.float64)
    k_max = hits.shape[1]
    ranks = torch.arange(1, k_max + 1, dtype=torch.float64, device=hits.device)
    discounts = 1.0 / torch.log2(ranks + 1.0)
    cum_hits = hits.cumsum(dim=1)
    dcg = (hits * discounts).cumsum(dim=1)
    idcg_table = discounts.cumsum(dim=0)
    ap_terms = (cum_hits / ranks * hits).cumsum(dim=1)
    out: dict[str, torch.Tensor] = {}
    for k in sorted(ks):
        kk = min(k, k_max)
        n_hit = cum_hits[:, kk - 1]
        ideal = torch.clamp(n_rel, max=kk).long()
        out[f"recall@{k}"] = n_hit / n_rel
        out[f"precision@{k}"] = n_hit / k
        out[f"hit@{k}"] = (n_hit > 0).to(torch.float64)
        out[f"ndcg@{k}"] = dcg[:, kk - 1] / idcg_table[ideal - 1]
        out[f"map@{k}"] = ap_terms[:, kk - 1] / ideal.to(torch.float64)
    return {name: out[name] for name in metric_names(sorted(ks))}


def metric_names(ks: list[int]) -> list[str]:
    return [f"{m}@{k}" for m in METRICS for k in ks]


def parse_metric(name: str) -> tuple[str, int]:
    """'recall@20' -> ('recall', 20); raises ValueError naming what is expected."""
    base, sep, k = name.partition("@")
    if not sep or base not in METRICS or not k.isdigit() or int(k) <= 0:
        raise ValueError(
            f"expected <metric>@<K> with metric in {', '.join(METRICS)} and K > 0, "
            f"got {name!r}"
        )
    return base, int(k)
