"""Item features from raw content: text embeddings, and user-supplied vectors aligned to the
dataset's item index."""

from searec.features.align import AlignedFeatures, align_to_dataset, align_vectors, read_vectors
from searec.features.text import encode_texts, read_item_texts_for

__all__ = ["AlignedFeatures", "align_to_dataset", "align_vectors", "encode_texts",
           "read_item_texts_for", "read_vectors"]
