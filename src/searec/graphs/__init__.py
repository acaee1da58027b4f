"""Graphs shared by every model, in three parts: sparse operators and propagation
(:mod:`~searec.graphs.operators`), item-item kNN graphs from features with their
content-addressed cache (:mod:`~searec.graphs.knn`), and the graphs models build from the
data (:mod:`~searec.graphs.builders`). Nothing here builds a dense items x items (or users
x users) matrix."""

from searec.graphs.builders import (
    cosine_weighted,
    mixed_knn_graph,
    normalized_similarity_graphs,
    softmax_user_graph,
    user_cooccurrence_topk,
)
from searec.graphs.knn import (
    KNN_METHODS,
    CacheDir,
    cache_dir,
    cached_knn_graph,
    content_key,
    hnsw_knn_graph,
    knn_cache_path,
    knn_graph,
    knn_indices,
    unit_rows,
)
from searec.graphs.operators import (
    Adjacency,
    BipartiteOperator,
    InteractionGraph,
    SparseOperator,
    binarized,
    bipartite_adjacency,
    edge_propagate,
    hypergraph_propagate,
    normalized_bipartite_block,
    propagate,
    propagated_mean,
    propagated_sum,
    register_operator,
    registered_operator,
    sym_normalize,
    sym_normalized_edges,
    to_torch_sparse,
)

__all__ = ["KNN_METHODS", "Adjacency", "BipartiteOperator", "CacheDir", "InteractionGraph",
           "SparseOperator", "binarized",
           "bipartite_adjacency", "cache_dir", "cached_knn_graph", "content_key",
           "cosine_weighted", "edge_propagate", "hnsw_knn_graph", "hypergraph_propagate",
           "knn_cache_path", "knn_graph", "knn_indices", "mixed_knn_graph",
           "normalized_bipartite_block",
           "normalized_similarity_graphs", "propagate", "propagated_mean", "propagated_sum",
           "register_operator", "registered_operator", "softmax_user_graph", "sym_normalize",
           "sym_normalized_edges", "to_torch_sparse", "unit_rows", "user_cooccurrence_topk"]
