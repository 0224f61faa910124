"""skinfluence: clean a training set by influence, the scikit-learn way."""

from ._compute import compute_influence
from .methods import (
    IP,
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

__version__ = "0.1.0.dev0"

__all__ = [
    "IP",
    "Checkpoint",
    "Fairness",
    "IPEnsemble",
    "InfluenceFunction",
    "Loss",
    "Method",
    "Objective",
    "Random",
    "Robustness",
    "SelfInfluence",
    "TorchModel",
    "TracIn",
    "Utility",
    "__version__",
    "as_torch_model",
    "compute_influence",
]
