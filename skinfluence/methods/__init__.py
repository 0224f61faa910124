"""Methods: how a training row's influence on the objective is scored."""

from ._base import METHODS, Method
from ._boostin import BoostIn
from ._gradient import IP, IPEnsemble, TracIn
from ._influence_function import CGConvergenceError, InfluenceFunction
from ._simple import Loss, Random, SelfInfluence
from ._trak import TRAK

__all__ = [
    "BoostIn",
    "IP",
    "METHODS",
    "CGConvergenceError",
    "IPEnsemble",
    "InfluenceFunction",
    "Loss",
    "Method",
    "Random",
    "SelfInfluence",
    "TRAK",
    "TracIn",
]
