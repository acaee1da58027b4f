"""Seeded synthetic multimodal data with planted generic and unique signal.

Each item has latent factors of three kinds: *generic* (shared: every modality's features
show them), *unique* (one block per modality, visible only in that modality's features)
and *id-only* (visible in no features; only collaborative filtering can learn them). Users
prefer items through all three, plus a long-tailed item popularity. Each modality's
features are a random linear map of [generic, unique_m] plus Gaussian noise, so a model
that separates what modalities share from what each knows alone has something real to find.
"""

from __future__ import annotations

import numpy as np

from searec.config import SyntheticConfig
from searec.data.dataset import Dataset, interaction_matrix


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
    rng = np.random.default_rng(cfg.seed)
    n_u, n_i = cfg.n_users, cfg.n_items
    names = list(cfg.modalities)

    generic = rng.standard_normal((n_i, cfg.generic_dim))
    unique = {m: rng.standard_normal((n_i, cfg.unique_dim)) for m in names}
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

    feats = {}
    for m, dim in cfg.modalities.items():
        source = np.concatenate([generic, unique[m]], axis=1)
        proj = rng.standard_normal((source.shape[1], dim)) / np.sqrt(source.shape[1])
        feat = source @ proj + cfg.noise * rng.standard_normal((n_i, dim))
        feats[m] = feat.astype(np.float32)

    splits = [interaction_matrix(users[labels == k], items[labels == k], n_u, n_i)
              for k in (0, 1, 2)]
    return Dataset(
        name="synthetic", n_users=n_u, n_items=n_i,
        train=splits[0], valid=splits[1], test=splits[2],
        modalities=feats, source=None,
    )
