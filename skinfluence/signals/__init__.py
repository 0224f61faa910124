"""Data-debugging signals: find mislabeled and anomalous training rows.

Every signal is "larger = more suspicious"; see :func:`compute_signals` and
the signals page of the documentation. Each is also a pruning method
(``method="signal_<name>"``), which drops the most suspicious rows.
"""

from ._compute import compute_signals
from ._matrix import influence_matrix, iter_influence_blocks
from ._methods import (
    SIGNAL_METHODS,
    SignalAAI,
    SignalAUM,
    SignalGDClass,
    SignalInstability,
    SignalLoss,
    SignalMAI,
    SignalMethod,
    SignalMI,
    SignalRelativeInstability,
    SignalSelfInfluence,
)
from ._signals import SIGNALS

__all__ = [
    "SIGNALS",
    "SIGNAL_METHODS",
    "SignalAAI",
    "SignalAUM",
    "SignalGDClass",
    "SignalInstability",
    "SignalLoss",
    "SignalMAI",
    "SignalMI",
    "SignalMethod",
    "SignalRelativeInstability",
    "SignalSelfInfluence",
    "compute_signals",
    "influence_matrix",
    "iter_influence_blocks",
]
