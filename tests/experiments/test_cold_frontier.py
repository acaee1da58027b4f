"""scripts/cold_frontier.py: the reserved-slot frontier on a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from searec.data.dataset import Dataset
from tests.repo_files import load_module

frontier = load_module("scripts/cold_frontier.py")


def _matrix(rows: dict[int, list[int]]) -> sp.csr_matrix:
    pairs = [(u, i) for u, items in rows.items() for i in items]
    users, items = zip(*pairs, strict=True) if pairs else ((), ())
    return sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (users, items)),
                         shape=(2, 6))


def test_slot_frontier_matches_hand_computed_lists():
    # items 0-3 warm (trained), 4 and 5 cold; user 1's training items 1-3 leave one warm
    # candidate, so its warm ranking's second place is an excluded item, never a hit
    dataset = Dataset("toy", 2, 6, train=_matrix({0: [0], 1: [1, 2, 3]}),
                      valid=_matrix({}), test=_matrix({0: [1, 4], 1: [0, 4]}))
    scores = torch.tensor([[9.0, 5, 4, 3, 6, 1], [2.0, 9, 9, 9, 1, 3]])
    result = frontier.slot_frontier(lambda users: scores[users], dataset, "test", k=2,
                                    max_slots=2)
    # m=0: both users' only warm test item at rank 1 of the warm ranking
    # m=1: user 0 gets its cold item 4 (rank 1 of its cold ranking), user 1 item 5 (a miss)
    # m=2: both lists are cold only; item 4 is in each
    np.testing.assert_allclose(result["warm"], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(result["cold"], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(result["all"], [0.5, 0.75, 0.5])
    np.testing.assert_allclose(result["warm_rank"], [1.0, 0.0])
    np.testing.assert_allclose(result["cold_rank"], [0.5, 0.5])
    with pytest.raises(ValueError, match="max_slots must be between 0 and k"):
        frontier.slot_frontier(lambda users: scores[users], dataset, "test", k=2,
                               max_slots=3)


def test_summary_sets_the_calibrated_path_beside_the_slots():
    rows = [{"dataset": "d", "variant": "sea", "seed": s, "split": "test", "slots": m,
             "all": 0.2, "warm": 0.25 - 0.01 * m, "cold": 0.01 * m,
             "warm_hit_rate_at_rank": 0.2 if m else "", "cold_hit_rate_at_rank": 0.1 if m
             else ""} for s in (1, 2) for m in (0, 1)]
    rows += [{"dataset": "d", "variant": "sea", "seed": s, "split": "test", "slots": "path",
              "all": 0.2, "warm": 0.245, "cold": 0.004, "warm_hit_rate_at_rank": "",
              "cold_hit_rate_at_rank": ""} for s in (1, 2)]
    table = frontier.summary(rows, 20)
    assert "| 1 | 2 | 0.2000 ± 0.0000 | 0.2400 ± 0.0000 | -4.0% | 0.0100 ± 0.0000 |" in table
    assert "| path | 2 | 0.2000 ± 0.0000 | 0.2450 ± 0.0000 | -2.0% |" in table


@pytest.mark.parametrize(("mask_valid", "warm"), [(True, 0.5), (False, 1.0)])
def test_slot_frontier_masks_validation_items_on_test_as_the_evaluator(mask_valid: bool,
                                                                       warm: float):
    # user 0's warm test item 1 is also a validation item: masked, it is a miss
    dataset = Dataset("toy", 2, 6, train=_matrix({0: [0], 1: [1, 2, 3]}),
                      valid=_matrix({0: [1]}), test=_matrix({0: [1, 4], 1: [0]}))
    scores = torch.tensor([[9.0, 5, 4, 3, 6, 1], [2.0, 9, 9, 9, 1, 3]])
    result = frontier.slot_frontier(lambda users: scores[users], dataset, "test", k=2,
                                    max_slots=0, mask_valid_in_test=mask_valid)
    assert result["warm"][0] == pytest.approx(warm)
    assert result["cold"][0] == 0.0  # no slot, no cold item
