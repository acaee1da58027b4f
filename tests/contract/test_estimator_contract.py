"""The contract every registered MI estimator meets (searec.testing.estimators, run for
each estimator in the registries: a new estimator is checked by adding its file)."""

from __future__ import annotations

import pytest
import torch

from searec.separation import AlignmentEstimator, alignment_registry, distancing_registry
from searec.testing import check_alignment, check_distancing


@pytest.mark.parametrize("name", sorted(alignment_registry()))
def test_alignment_estimator_contract(name):
    check_alignment(alignment_registry()[name])


@pytest.mark.parametrize("name", sorted(distancing_registry()))
def test_distancing_estimator_contract(name):
    check_distancing(distancing_registry()[name])


def test_the_suite_fails_broken_estimators():
    """The checks can fail: an alignment loss that ignores its inputs, and a distancing
    estimator whose value lets gradient into the network it fits, are both caught."""
    from searec.separation.distancing.club import CLUB
    from searec.separation.distancing.variational import gaussian_log_ratio_terms

    class Constant(AlignmentEstimator):
        name = "constant"

        def forward(self, za, zb):
            return (za * 0).sum() + (zb * 0).sum() + 1.0

    with pytest.raises(AssertionError):
        check_alignment(Constant)

    class Leaky(CLUB):
        name = "leaky"

        def bounds(self, x, y):
            out = {}
            for m in self.names:
                mu, logvar = self.q(x[m], copy=self.q_copy(m))  # not detached
                perm = torch.randperm(len(y[m]))
                out[m] = (gaussian_log_ratio_terms(mu, logvar, y[m])
                          - gaussian_log_ratio_terms(mu, logvar, y[m][perm])).mean()
            return out

    with pytest.raises(AssertionError):
        check_distancing(Leaky)
