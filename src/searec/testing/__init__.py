"""The contract suites searec's own models and MI estimators pass, shipped with the
package so that a plug-in's author can run them on what they register (see
docs/extending.md): ``check_model``, ``check_alignment``, ``check_distancing``."""

from searec.testing.estimators import check_alignment, check_distancing
from searec.testing.models import MODEL_CHECKS, Built, NotApplicable, check_model

__all__ = ["MODEL_CHECKS", "Built", "NotApplicable", "check_alignment", "check_distancing",
           "check_model"]
