"""SEA's separation component: split, alignment (MI lower bounds across modalities) and
distancing (MI upper bounds within a modality), usable by any backbone. Estimators of
either kind are registered by name (see docs/extending.md)."""

from searec.separation.alignment import (
    ALIGNMENTS,
    Alignment,
    AlignmentEstimator,
    AlignmentParams,
    ContrastiveParams,
    alignment_registry,
    infonce_loss,
    register_alignment,
    solosim_loss,
)
from searec.separation.component import Separation, SeparationParams, migrate_flat_settings
from searec.separation.distancing import (
    DISTANCINGS,
    Distancing,
    DistancingEstimator,
    DistancingParams,
    GaussianQ,
    TransformedParams,
    VariationalEstimator,
    VariationalParams,
    club_sample_bound,
    distancing_registry,
    neg_l2,
    register_distancing,
)
from searec.separation.registry import EstimatorParams
from searec.separation.split import ModalitySplit

__all__ = ["ALIGNMENTS", "DISTANCINGS", "Alignment", "AlignmentEstimator", "AlignmentParams",
           "ContrastiveParams", "Distancing", "DistancingEstimator", "DistancingParams",
           "EstimatorParams", "GaussianQ", "ModalitySplit", "Separation", "SeparationParams",
           "TransformedParams", "VariationalEstimator", "VariationalParams",
           "alignment_registry", "club_sample_bound", "distancing_registry", "infonce_loss",
           "migrate_flat_settings", "neg_l2", "register_alignment", "register_distancing",
           "solosim_loss"]
