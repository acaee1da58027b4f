"""SEA's separation component: split, alignment (MI lower bounds across modalities) and
distancing (MI upper bounds within a modality), usable by any backbone."""

from searec.separation.alignment import Alignment, infonce_loss, solosim_loss
from searec.separation.component import Separation, SeparationParams
from searec.separation.distancing import Distancing, GaussianQ, club_sample_bound, neg_l2
from searec.separation.split import ModalitySplit

__all__ = ["Alignment", "Distancing", "GaussianQ", "ModalitySplit", "Separation",
           "SeparationParams", "club_sample_bound", "infonce_loss", "neg_l2", "solosim_loss"]
