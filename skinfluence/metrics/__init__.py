"""Metrics: fairness gaps and their conditions, detection metrics, the LDS."""

from ._counterfactual import lds_noise_ceiling, linear_datamodeling_score
from ._detection import detection_f1, detection_roc_auc
from ._fairness import (
    FAIRNESS_METRICS,
    MIN_GROUP_ROWS,
    check_fairness_metric,
    check_groups_defined,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    metric_conditions,
)
from ._groups import (
    MAX_GROUPS,
    check_pos_label,
    check_sensitive_features,
    encode_groups,
)

__all__ = [
    "FAIRNESS_METRICS",
    "MAX_GROUPS",
    "MIN_GROUP_ROWS",
    "check_fairness_metric",
    "check_groups_defined",
    "check_pos_label",
    "check_sensitive_features",
    "detection_f1",
    "detection_roc_auc",
    "demographic_parity_difference",
    "encode_groups",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "lds_noise_ceiling",
    "linear_datamodeling_score",
    "metric_conditions",
]
