"""Plots: the distribution of influence scores, the pruning curve, the fairness front.

matplotlib is an optional dependency (the ``plot`` extra); it is imported
inside the functions, so ``import skinfluence.plotting`` never needs it.
"""


from ._front import plot_fairness_front
from ._influence import plot_influence
from ._pruning import plot_pruning_curve

__all__ = ["plot_fairness_front", "plot_influence", "plot_pruning_curve"]
