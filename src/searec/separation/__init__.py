"""SEA's separation component: split, alignment (MI lower bounds across modalities) and
distancing (MI upper bounds within a modality), usable by any backbone. Estimators of
either kind are registered by name (see docs/extending.md)."""

from searec.separation.alignment import (
    Alignment,
    AlignmentEstimator,
    alignment_registry,
    infonce_loss,
    register_alignment,
    solosim_loss,
)
from searec.separation.component import Separation, SeparationParams
from searec.separation.distancing import (
    Distancing,
    DistancingEstimator,
    GaussianQ,
    VariationalEstimator,
    VariationalSettings,
    club_sample_bound,
    distancing_registry,
    neg_l2,
    register_distancing,
)
from searec.separation.split import ModalitySplit

__all__ = ["Alignment", "AlignmentEstimator", "Distancing", "DistancingEstimator",
           "GaussianQ", "ModalitySplit", "Separation", "SeparationParams",
           "VariationalEstimator", "VariationalSettings", "alignment_registry",
           "club_sample_bound", "distancing_registry", "infonce_loss", "neg_l2",
           "register_alignment", "register_distancing", "solosim_loss"]
