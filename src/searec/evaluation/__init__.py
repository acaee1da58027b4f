"""Full-ranking evaluation, vectorised top-k metrics, and the evaluation protocol (warm and
cold items)."""

from searec.evaluation.evaluator import evaluate_ranking
from searec.evaluation.metrics import METRICS, metric_names, per_user_metrics
from searec.evaluation.protocol import (
    RankingModel,
    evaluate_model,
    metric_values,
    warm_and_cold_metrics,
)

__all__ = ["METRICS", "RankingModel", "evaluate_model", "evaluate_ranking", "metric_names",
           "metric_values", "per_user_metrics", "warm_and_cold_metrics"]
