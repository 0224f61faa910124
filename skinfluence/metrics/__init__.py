"""Metrics: fairness gaps (and, later, detection metrics)."""

from ._detection import detection_f1, detection_roc_auc
from ._fairness import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)

__all__ = [
    "detection_f1",
    "detection_roc_auc",
    "demographic_parity_difference",
    "equal_opportunity_difference",
    "equalized_odds_difference",
]
