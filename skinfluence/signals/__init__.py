"""Data-debugging signals: find mislabeled and anomalous training rows.

Every signal is "larger = more suspicious"; see :func:`compute_signals` and
the signals page of the documentation. Each is also a pruning method
(``method="signal_<name>"``), which drops the most suspicious rows. A signal
is one :class:`SignalMethod` subclass; :data:`SIGNALS` (name -> what it
needs) and :data:`SIGNAL_METHODS` (name -> class) list them.
"""

from ._compute import compute_signals
from ._matrix import influence_matrix, iter_influence_blocks
from ._methods import (
    SignalAAI,
    SignalAUM,
    SignalGDClass,
    SignalInstability,
    SignalLoss,
    SignalMAI,
    SignalMI,
    SignalRelativeInstability,
    SignalSelfInfluence,
)
from ._signals import SIGNAL_METHODS, SIGNALS, SignalMethod

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
