"""Datasets: the in-memory Dataset, the MMRec reader/writer, synthetic data, sampling."""

from searec.data.dataset import Dataset, interaction_matrix
from searec.data.mmrec import load_mmrec, save_mmrec
from searec.data.sampling import NegativeSampler, bpr_batches
from searec.data.synthetic import make_synthetic

__all__ = [
    "Dataset",
    "NegativeSampler",
    "bpr_batches",
    "interaction_matrix",
    "load_mmrec",
    "make_synthetic",
    "save_mmrec",
]
