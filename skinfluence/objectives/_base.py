"""Objectives: a scalar J(theta) to minimise on the validation rows."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from sklearn.base import BaseEstimator
from torch import Tensor

from .._kernels import chunked_gradient, row_chunks, to_device
from .._registry import Registry
from ..models import TorchModel

Params = Mapping[str, Tensor]


class Objective(BaseEstimator):
    """Base class of objectives: subclasses implement :meth:`bind`.

    A subclass sets a string ``_key`` and is registered with
    ``OBJECTIVES.register``; the key is then accepted wherever an objective is.
    """

    _key: str = ""
    #: whether ``bind`` needs ``sensitive_features``
    requires_sensitive_features: bool = False
    #: whether ``bind`` differentiates the model in its input (adversarial rows)
    needs_input_gradient: bool = False

    #: the constructor parameters' accepted values, in scikit-learn's format
    _parameter_constraints: dict = {}

    def validate(self) -> None:
        """Check the parameters (cheap, before any training); raise ValueError.

        Checks them against ``_parameter_constraints``.
        """
        self._validate_params()

    def bind(self, model: TorchModel, X_val, y_val, sensitive_features=None):
        """Fix the validation rows and return a :class:`BoundObjective`."""
        raise NotImplementedError


class BoundObjective:
    """J(theta) = sum_r w_r(theta) * phi_r(theta) over the validation rows.

    ``phi_r`` is a differentiable per-row value (a loss, a probability) and the
    weights ``w_r`` are piecewise constant in theta (a mean, or the sign and
    argmax of a fairness gap), so the gradient is the weighted sum of per-row
    gradients and accumulates over chunks of rows in bounded memory.

    Subclasses implement :meth:`row_values` and :meth:`row_weights`.

    Parameters
    ----------
    model : TorchModel
    X : Tensor or SparseRows
        Validation inputs in the model's input space (CPU).
    y : Tensor
        Validation class indices (CPU).
    """

    def __init__(self, model: TorchModel, X: Tensor, y: Tensor) -> None:
        self.model = model
        self.X = X
        self.y = y

    def __len__(self) -> int:
        return len(self.X)

    def row_values(self, params: Params, Xb: Tensor, yb: Tensor) -> Tensor:
        """phi_r for a chunk of rows, shape ``(b,)``."""
        raise NotImplementedError

    def row_weights(self, params: Params, batch_size: int) -> Tensor:
        """w_r for all rows at ``params`` (no gradient), shape ``(m,)``."""
        raise NotImplementedError

    @torch.no_grad()
    def all_row_values(self, params: Params, batch_size: int) -> Tensor:
        """phi_r for all validation rows (no gradient)."""
        return torch.cat(
            [
                self.row_values(params, *to_device(self.model, self.X, self.y, sl))
                for sl in row_chunks(self.X, batch_size)
            ]
        )

    def value(self, params: Params | None = None, batch_size: int = 4096) -> float:
        """J(theta) (at the fitted parameters by default)."""
        params = self.model.params if params is None else params
        w = self.row_weights(params, batch_size)
        return float((w * self.all_row_values(params, batch_size)).sum())

    def gradient(self, params: Params | None = None, batch_size: int = 4096) -> dict:
        """grad J(theta), a dict like ``params`` (one reverse pass, chunked).

        Chunks whose weights are all zero are skipped.
        """
        params = self.model.params if params is None else params
        w = self.row_weights(params, batch_size).to(self.model.device)

        def partial(p, Xb, yb, wb):
            return (wb * self.row_values(p, Xb, yb)).sum()

        parts = (
            (*to_device(self.model, self.X, self.y, sl), w[sl])
            for sl in row_chunks(self.X, batch_size)
            if torch.any(w[sl] != 0)
        )
        return chunked_gradient(partial, params, parts)


OBJECTIVES = Registry(Objective, "objective")
