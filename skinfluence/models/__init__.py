"""Adapters from fitted estimators to :class:`TorchModel`."""

from ._base import Checkpoint, TorchModel
from ._dispatch import as_torch_model

__all__ = ["Checkpoint", "TorchModel", "as_torch_model"]
