import numpy as np
import pytest
import scipy.sparse as sp

from searec.data import NegativeSampler, bpr_batches


def _train():
    r = sp.random(200, 50, density=0.3, random_state=0, format="csr")
    r.data[:] = 1
    return r


def test_negatives_are_never_training_positives():
    train = _train()
    sampler = NegativeSampler(train)
    users = np.repeat(np.arange(200), 50)
    neg = sampler.sample(users, np.random.default_rng(0))
    assert not train[users, neg].A1.any()
    assert neg.min() >= 0 and neg.max() < 50


def test_negatives_roughly_uniform_over_non_positives():
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 0]], dtype=np.float32))
    sampler = NegativeSampler(train)
    neg = sampler.sample(np.zeros(30000, dtype=np.int64), np.random.default_rng(1))
    counts = np.bincount(neg, minlength=5)
    assert counts[0] == counts[1] == 0
    assert np.allclose(counts[2:] / 30000, 1 / 3, atol=0.02)


def test_batches_cover_every_pair_once_and_are_seeded():
    train = _train()
    coo = train.tocoo()
    sampler = NegativeSampler(train)
    batches = list(bpr_batches(coo.row, coo.col, sampler, 64, np.random.default_rng(5)))
    u = np.concatenate([b[0] for b in batches])
    i = np.concatenate([b[1] for b in batches])
    assert len(u) == train.nnz
    assert set(zip(u.tolist(), i.tolist(), strict=True)) == set(
        zip(coo.row.tolist(), coo.col.tolist(), strict=True))
    again = list(bpr_batches(coo.row, coo.col, sampler, 64, np.random.default_rng(5)))
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(batches, again, strict=True))


def test_user_with_every_item_is_rejected():
    with pytest.raises(ValueError, match="interacted with every item"):
        NegativeSampler(sp.csr_matrix(np.ones((2, 3), dtype=np.float32)))
