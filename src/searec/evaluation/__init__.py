"""Full-ranking evaluation and vectorised top-k metrics."""

from searec.evaluation.evaluator import evaluate_ranking
from searec.evaluation.metrics import METRICS, metric_names, per_user_metrics

__all__ = ["METRICS", "evaluate_ranking", "metric_names", "per_user_metrics"]
