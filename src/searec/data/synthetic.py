"""Seeded synthetic multimodal data with planted generic and unique signal.

Each item has latent factors of three kinds: *generic* (shared: every modality's features
show them), *unique* (one block per modality, visible only in that modality's features)
and *id-only* (visible in no features; only collaborative filtering can learn them). Users
prefer items through all three, plus a long-tailed item popularity. Each modality's
features are a random linear map of [generic, unique_m] plus Gaussian noise, so a model
that separates what modalities share from what each knows alone has something real to find.

``generator="clustered"`` is the scalable variant (used for the 1M-user benchmarks): the
same kinds of factors belong to item *clusters*; users prefer a few clusters, chosen
through their own latent factors, and draw popular items from them. Its cost is linear in
the number of interactions (no users x items score matrix).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from searec.data.dataset import Dataset, interaction_matrix
from searec.schema import StrictModel


class SyntheticConfig(StrictModel):
    n_users: int = Field(800, gt=1, description="Users in the generated dataset.")
    n_items: int = Field(500, gt=1, description="Items in the generated dataset.")
    modalities: dict[str, int] = Field(
        default_factory=lambda: {"image": 64, "text": 48, "audio": 32},
        description="Modality name -> feature dimension.",
    )
    interactions_per_user: int = Field(
        20, gt=2, description="Mean interactions per user (each user has at least 5)."
    )
    generic_dim: int = Field(8, gt=0, description="Latent factors shared by all modalities.")
    unique_dim: int = Field(4, gt=0, description="Latent factors private to each modality.")
    id_dim: int = Field(4, ge=0, description="Latent factors visible in no modality (pure CF).")
    noise: float = Field(0.5, ge=0, description="Std of Gaussian noise added to features.")
    seed: int = Field(0, description="Seed of the generator (independent of train.seed).")
    generator: Literal["latent", "clustered"] = Field(
        "latent", description="latent: users score every item through latent factors "
        "(O(users x items), for small sets); clustered: items fall into n_clusters clusters "
        "and users draw from a few favourite clusters (O(interactions), for millions).")
    n_clusters: int = Field(256, gt=1, description="clustered: number of item clusters.")


def _split_per_user(
    users: np.ndarray, rng: np.random.Generator, n_users: int
) -> np.ndarray:
    """Labels 0/1/2 per interaction: per user ~10% valid, ~10% test (at least one each)."""
    labels = np.zeros(len(users), dtype=np.int64)
    order = np.lexsort((rng.random(len(users)), users))
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(users)) - np.repeat(starts, counts)  # position within user, shuffled
    n_hold = np.maximum(1, np.round(0.1 * counts)).astype(np.int64)
    per = np.repeat(n_hold, counts)
    labels[order] = np.where(rank < per, 1, np.where(rank < 2 * per, 2, 0))
    return labels


def make_synthetic(cfg: SyntheticConfig | None = None, **overrides: object) -> Dataset:
    """Generate a dataset (deterministic given ``cfg.seed``)."""
    base = (cfg or SyntheticConfig()).model_dump()
    cfg = SyntheticConfig.model_validate({**base, **overrides})
    if cfg.generator == "clustered":
        return _make_clustered(cfg)
    rng = np.random.default_rng(cfg.seed)
    n_u, n_i = cfg.n_users, cfg.n_items
    names = list(cfg.modalities)

    generic, unique = _planted(cfg, rng)
    id_only = rng.standard_normal((n_i, cfg.id_dim))
    item_latent = np.concatenate([generic, *unique.values(), id_only], axis=1)
    user_latent = rng.standard_normal((n_u, item_latent.shape[1]))
    # Equal weight per block of factors: each block contributes comparable variance.
    block_sizes = [cfg.generic_dim] + [cfg.unique_dim] * len(names) + [cfg.id_dim]
    scale = np.concatenate([np.full(b, 1.0 / np.sqrt(max(b, 1))) for b in block_sizes])
    popularity = rng.normal(0.0, 1.0, n_i)

    per_user = np.maximum(5, rng.poisson(cfg.interactions_per_user, n_u))
    per_user = np.minimum(per_user, n_i // 2)
    users_out, items_out = [], []
    block = 2048
    for start in range(0, n_u, block):
        stop = min(start + block, n_u)
        logits = 2.5 * (user_latent[start:stop] * scale) @ item_latent.T + popularity
        logits += rng.gumbel(size=logits.shape)  # Gumbel top-k = sampling without replacement
        k_max = int(per_user[start:stop].max())
        top = np.argpartition(-logits, k_max, axis=1)[:, :k_max]
        top_scores = np.take_along_axis(logits, top, axis=1)
        top = np.take_along_axis(top, np.argsort(-top_scores, axis=1), axis=1)
        for row, u in enumerate(range(start, stop)):
            users_out.append(np.full(per_user[u], u))
            items_out.append(top[row, : per_user[u]])
    users = np.concatenate(users_out)
    items = np.concatenate(items_out)
    labels = _split_per_user(users, rng, n_u)

    feats = _features(cfg, generic, unique, rng)
    splits = [interaction_matrix(users[labels == k], items[labels == k], n_u, n_i)
              for k in (0, 1, 2)]
    return Dataset(
        name="synthetic", n_users=n_u, n_items=n_i,
        train=splits[0], valid=splits[1], test=splits[2],
        modalities=feats, source=None,
    )


def _planted(cfg: SyntheticConfig, rng: np.random.Generator
             ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The first draws of the latent generator: generic and per-modality unique factors."""
    generic = rng.standard_normal((cfg.n_items, cfg.generic_dim))
    unique = {m: rng.standard_normal((cfg.n_items, cfg.unique_dim)) for m in cfg.modalities}
    return generic, unique


def planted_factors(cfg: SyntheticConfig | None = None, **overrides: object
                    ) -> dict[str, np.ndarray]:
    """The latent generator's planted item factors, for checking what a model recovered:
    ``generic`` (n_items, generic_dim) and ``unique_<m>`` (n_items, unique_dim) per modality
    (the same draws :func:`make_synthetic` makes with this config)."""
    base = (cfg or SyntheticConfig()).model_dump()
    cfg = SyntheticConfig.model_validate({**base, **overrides})
    if cfg.generator != "latent":
        raise ValueError("planted factors are defined for generator='latent'")
    generic, unique = _planted(cfg, np.random.default_rng(cfg.seed))
    return {"generic": generic, **{f"unique_{m}": u for m, u in unique.items()}}


def _features(
    cfg: SyntheticConfig, generic: np.ndarray, unique: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Each modality: a random linear map of [generic, unique_m] plus Gaussian noise."""
    feats = {}
    for m, dim in cfg.modalities.items():
        source = np.concatenate([generic, unique[m]], axis=1)
        proj = rng.standard_normal((source.shape[1], dim)) / np.sqrt(source.shape[1])
        feat = source @ proj + cfg.noise * rng.standard_normal((len(source), dim))
        feats[m] = feat.astype(np.float32)
    return feats


def _make_clustered(cfg: SyntheticConfig) -> Dataset:
    # Items (clusters, factors, features) come from their own stream, so the item side, and
    # with it every kNN graph, is the same whatever the number of users.
    rng = np.random.default_rng([cfg.seed, 0])
    n_u, n_i, n_c = cfg.n_users, cfg.n_items, min(cfg.n_clusters, cfg.n_items)
    names = list(cfg.modalities)
    # cluster factors; an item is its cluster's factors plus a little of its own
    c_generic = rng.standard_normal((n_c, cfg.generic_dim))
    c_unique = {m: rng.standard_normal((n_c, cfg.unique_dim)) for m in names}
    c_id = rng.standard_normal((n_c, cfg.id_dim))
    cluster = rng.integers(0, n_c, n_i)
    generic = c_generic[cluster] + 0.3 * rng.standard_normal((n_i, cfg.generic_dim))
    unique = {m: c_unique[m][cluster] + 0.3 * rng.standard_normal((n_i, cfg.unique_dim))
              for m in names}
    # items sorted by cluster; long-tailed popularity within each cluster
    order = np.argsort(cluster, kind="stable")
    sizes = np.bincount(cluster, minlength=n_c)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(n_i) - np.repeat(starts, sizes) + 1
    weight = rank.astype(np.float64) ** -0.8
    seg_total = np.add.reduceat(weight, starts[sizes > 0]) if n_i else weight
    totals = np.zeros(n_c)
    totals[sizes > 0] = seg_total
    cum = np.cumsum(weight) - np.repeat(np.cumsum(totals) - totals, sizes)
    cum = cum / np.repeat(np.where(totals > 0, totals, 1.0), sizes)
    key = np.repeat(np.arange(n_c), sizes) + cum  # increasing: cluster c spans (c, c + 1]
    feats = _features(cfg, generic, unique, rng)
    rng = np.random.default_rng([cfg.seed, 1])  # users and their interactions
    # users pick 3 favourite clusters through latent factors (blockwise: users x clusters)
    block_sizes = [cfg.generic_dim] + [cfg.unique_dim] * len(names) + [cfg.id_dim]
    scale = np.concatenate([np.full(b, 1.0 / np.sqrt(max(b, 1))) for b in block_sizes])
    c_latent = np.concatenate([c_generic, *c_unique.values(), c_id], axis=1) * scale
    favourites = np.empty((n_u, 3), dtype=np.int64)
    for start in range(0, n_u, 65536):
        stop = min(start + 65536, n_u)
        logits = 2.5 * rng.standard_normal((stop - start, c_latent.shape[1])) @ c_latent.T
        logits += rng.gumbel(size=logits.shape)
        favourites[start:stop] = np.argpartition(-logits, 3, axis=1)[:, :3]
    per_user = np.maximum(5, rng.poisson(cfg.interactions_per_user, n_u))
    per_user = np.minimum(per_user, n_i // 2)

    def draw(users: np.ndarray) -> np.ndarray:
        pick = rng.choice(3, size=len(users), p=[0.6, 0.3, 0.1])
        chosen = favourites[users, pick]
        # 10% of draws ignore the favourites: any cluster, weighted by size
        explore = rng.random(len(users)) < 0.1
        chosen[explore] = cluster[rng.integers(0, n_i, int(explore.sum()))]
        pos = np.searchsorted(key, chosen + rng.random(len(users)) * (1 - 1e-12))
        return users.astype(np.int64) * n_i + order[np.minimum(pos, n_i - 1)]

    pairs = np.unique(draw(np.repeat(np.arange(n_u), per_user)))
    for _ in range(20):  # a repeated (user, item) draw counts once: draw the shortfall again
        short = per_user - np.bincount(pairs // n_i, minlength=n_u)
        if not (short > 0).any():
            break
        pairs = np.unique(np.concatenate([pairs, draw(np.repeat(np.arange(n_u),
                                                                np.maximum(short, 0)))]))
    users, items = pairs // n_i, pairs % n_i  # each round draws only the shortfall
    labels = _split_per_user(users, rng, n_u)
    splits = [interaction_matrix(users[labels == k], items[labels == k], n_u, n_i)
              for k in (0, 1, 2)]
    return Dataset(name="synthetic-clustered", n_users=n_u, n_items=n_i,
                   train=splits[0], valid=splits[1], test=splits[2], modalities=feats)
