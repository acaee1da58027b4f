import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from searec.evaluation import evaluate_ranking, per_user_metrics
from searec.topk import topk_stable


def test_metrics_hand_computed():
    hits = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=torch.bool)
    n_rel = torch.tensor([3, 1])
    m = per_user_metrics(hits, n_rel, [2, 5])
    d = [1 / math.log2(r + 2) for r in range(5)]
    # user 0: hits at ranks 1 and 3 of 3 relevant items
    assert m["recall@2"][0].item() == pytest.approx(1 / 3)
    assert m["recall@5"][0].item() == pytest.approx(2 / 3)
    assert m["precision@2"][0].item() == pytest.approx(1 / 2)
    assert m["precision@5"][0].item() == pytest.approx(2 / 5)
    assert m["ndcg@2"][0].item() == pytest.approx(d[0] / (d[0] + d[1]))
    assert m["ndcg@5"][0].item() == pytest.approx((d[0] + d[2]) / (d[0] + d[1] + d[2]))
    assert m["map@2"][0].item() == pytest.approx(1.0 / 2)
    assert m["map@5"][0].item() == pytest.approx((1.0 + 2 / 3) / 3)
    assert m["hit@2"][0].item() == 1.0
    # user 1: one relevant item, found at rank 5
    assert m["recall@2"][1].item() == 0.0
    assert m["hit@2"][1].item() == 0.0
    assert m["recall@5"][1].item() == 1.0
    assert m["ndcg@5"][1].item() == pytest.approx(d[4])
    assert m["map@5"][1].item() == pytest.approx(1 / 5)
    assert m["precision@5"][1].item() == pytest.approx(1 / 5)


def test_perfect_ranking_with_fewer_relevant_than_k():
    hits = torch.tensor([[1, 1, 0, 0]], dtype=torch.bool)
    m = per_user_metrics(hits, torch.tensor([2]), [4])
    assert m["recall@4"].item() == 1.0
    assert m["ndcg@4"].item() == pytest.approx(1.0)
    assert m["map@4"].item() == pytest.approx(1.0)
    assert m["precision@4"].item() == pytest.approx(0.5)


def test_topk_stable_breaks_ties_by_lower_index():
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0, 3.0], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]])
    vals, idx = topk_stable(scores, 3)
    assert idx.tolist() == [[5, 1, 2], [0, 1, 2]]
    assert vals.tolist() == [[3.0, 2.0, 2.0], [5.0, 5.0, 5.0]]
    # Order inside the top-k also follows (score desc, id asc) when topk returns ties.
    scores = torch.tensor([[0.0, 1.0, 1.0, 1.0, 1.0]])
    assert topk_stable(scores, 4)[1].tolist() == [[1, 2, 3, 4]]


def _score_fn(matrix):
    table = torch.tensor(matrix, dtype=torch.float32)
    return lambda users: table[users]


def test_evaluator_masks_training_items_and_handles_ties():
    # 2 users x 5 items. user 0 trained on item 0 (highest score), held-out item 2.
    scores = [[9.0, 1.0, 5.0, 5.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]]
    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    target = sp.csr_matrix(np.array([[0, 0, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    res = evaluate_ranking(_score_fn(scores), target, [train], [1, 2, 5], batch_size=1)
    # user 0: item 0 masked; items 2 and 3 tie at 5 -> item 2 first (lower id): hit at rank 1.
    # user 1: all tie -> order 0,1,2,3,4: hit at rank 5.
    assert res["users"] == 2
    assert res["recall@1"] == pytest.approx(0.5)
    assert res["recall@2"] == pytest.approx(0.5)
    assert res["recall@5"] == pytest.approx(1.0)
    assert res["ndcg@5"] == pytest.approx((1.0 + 1 / math.log2(6)) / 2)


def test_evaluator_skips_users_without_heldout_items_and_k_larger_than_items():
    scores = [[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]
    train = sp.csr_matrix((3, 3), dtype=np.float32)
    target = sp.csr_matrix(np.array([[0, 0, 1], [0, 0, 1], [0, 0, 0]], dtype=np.float32))
    res = evaluate_ranking(_score_fn(scores), target, [train], [1, 10])
    assert res["users"] == 2
    assert res["recall@1"] == pytest.approx(0.5)
    assert res["recall@10"] == pytest.approx(1.0)
    assert res["precision@10"] == pytest.approx(0.1)


def _train_and_target() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Random binary training and held-out matrices (50 users x 30 items), disjoint."""
    train = sp.random(50, 30, density=0.2, random_state=1, format="csr")
    train.data[:] = 1
    target = sp.random(50, 30, density=0.1, random_state=2, format="csr")
    target = target - target.multiply(train)
    target.eliminate_zeros()
    target.data[:] = 1
    return train, target


def test_evaluator_batching_does_not_change_results():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 30)).astype(np.float32)
    train, target = _train_and_target()
    a = evaluate_ranking(_score_fn(scores), target, [train], [5, 10], batch_size=7)
    b = evaluate_ranking(_score_fn(scores), target, [train], [5, 10], batch_size=1000)
    assert a == pytest.approx(b)


def test_score_batches_are_capped_by_memory():
    from searec.csr import MAX_BATCH_SCORES, users_per_batch

    assert users_per_batch(4096, 1000) == 4096
    assert users_per_batch(4096, 200_000) == MAX_BATCH_SCORES // 200_000 == 1342
    assert users_per_batch(4096, 10**10) == 1


def test_score_functions_that_take_a_buffer_get_one_allocation_and_the_same_metrics():
    """A score function with a keyword ``out`` is handed views of one reused buffer (a
    fresh batch x items tensor per batch page-faults through up to 1 GiB each time);
    the metrics are those of the plain score function."""
    from searec.scores import ScoreBuffer, writes_into

    rng = np.random.default_rng(3)
    scores = torch.from_numpy(rng.standard_normal((50, 30)).astype(np.float32))
    train, target = _train_and_target()
    buffers = []

    def into(users: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        buffers.append(out)
        return torch.index_select(scores, 0, users, out=out)

    plain = evaluate_ranking(lambda u: scores[u].clone(), target, [train], [5, 10],
                             batch_size=7)
    assert evaluate_ranking(into, target, [train], [5, 10], batch_size=7) == plain
    n_users = int((np.diff(target.indptr) > 0).sum())  # those with held-out items
    assert [len(b) for b in buffers] == [7] * (n_users // 7) + [n_users % 7]
    assert len({b.untyped_storage().data_ptr() for b in buffers}) == 1
    assert writes_into(into) and not writes_into(lambda u: scores[u]) and not writes_into(len)
    # a score function that returns a tensor of its own is used as returned
    fresh = ScoreBuffer(lambda users, out: scores[users] * 2, 30, torch.device("cpu"))
    torch.testing.assert_close(fresh(torch.arange(3)), scores[:3] * 2)
    # the buffer is as large as the largest batch asked for, not as the batch bound: one
    # user's request allocates one row
    sized = ScoreBuffer(into, 30, torch.device("cpu"))
    sized(torch.tensor([4]))
    assert sized.buffer is not None and sized.buffer.shape == (1, 30)
    sized(torch.arange(3))
    first = sized.buffer
    torch.testing.assert_close(sized(torch.arange(2)), scores[:2])
    assert first.shape == (3, 30) and sized.buffer is first
