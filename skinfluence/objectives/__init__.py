"""Objectives: what a training row's influence is measured on."""

from ._base import OBJECTIVES, BoundObjective, Objective
from ._fairness import Fairness
from ._robustness import Robustness
from ._utility import Utility

__all__ = [
    "OBJECTIVES",
    "BoundObjective",
    "Fairness",
    "Objective",
    "Robustness",
    "Utility",
]
