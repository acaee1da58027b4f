"""Item features from raw content: text embeddings, and user-supplied vectors aligned to the
dataset's item index."""

from searec.features.align import align_vectors, read_vectors
from searec.features.text import encode_texts

__all__ = ["align_vectors", "encode_texts", "read_vectors"]
