"""Adapters from fitted estimators to :class:`TorchModel`."""

from ._base import Checkpoint, TorchModel
from ._dispatch import as_torch_model
from ._support import SupportInfo, check_supported

__all__ = [
    "Checkpoint",
    "SupportInfo",
    "TorchModel",
    "as_torch_model",
    "check_supported",
]
