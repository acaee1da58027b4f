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


def test_trained_pool_never_draws_items_without_training_interactions():
    train = sp.csr_matrix(np.array([[1, 0, 0, 1, 0, 0],
                                    [0, 1, 0, 0, 0, 0],
                                    [0, 0, 0, 1, 0, 0]], dtype=np.float32))
    users = np.repeat(np.arange(3), 3000)
    trained = NegativeSampler(train, "trained").sample(users, np.random.default_rng(2))
    # items 0, 1, 3 have training interactions; user 0 has 0 and 3, user 1 has 1, user 2 has 3
    assert set(trained[users == 0].tolist()) == {1}
    assert set(trained[users == 1].tolist()) == {0, 3}
    assert set(trained[users == 2].tolist()) == {0, 1}
    catalogue = NegativeSampler(train).sample(users, np.random.default_rng(2))
    assert set(catalogue[users == 0].tolist()) == {1, 2, 4, 5}


def test_trained_pool_rejects_a_user_with_every_trained_item():
    train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    NegativeSampler(train)  # item 2 is a negative for both
    with pytest.raises(ValueError, match="every item that has training interactions"):
        NegativeSampler(train, "trained")
