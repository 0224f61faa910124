"""skinfluence: clean a training set by influence, the scikit-learn way."""

from ._compute import compute_influence
from ._filter import InfluenceFilter
from ._front import fairness_front
from ._sampler import InfluenceSampler
from .methods import (
    IP,
    TRAK,
    InfluenceFunction,
    IPEnsemble,
    Loss,
    Method,
    Random,
    SelfInfluence,
    TracIn,
)
from .models import Checkpoint, TorchModel, as_torch_model
from .objectives import Fairness, Objective, Robustness, Utility
from .signals import compute_signals

__version__ = "0.1.0.dev0"

__all__ = [
    "IP",
    "Checkpoint",
    "Fairness",
    "IPEnsemble",
    "InfluenceFilter",
    "InfluenceFunction",
    "InfluenceSampler",
    "Loss",
    "Method",
    "Objective",
    "Random",
    "Robustness",
    "SelfInfluence",
    "TRAK",
    "TorchModel",
    "TracIn",
    "Utility",
    "__version__",
    "as_torch_model",
    "compute_influence",
    "compute_signals",
    "fairness_front",
]
