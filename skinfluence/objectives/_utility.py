"""Utility: mean training loss (cross-entropy) on the validation rows."""

from __future__ import annotations

import torch

from ._base import OBJECTIVES, BoundObjective, Objective
from ._validation import prepare_validation


class _MeanLoss(BoundObjective):
    def row_values(self, params, Xb, yb):
        return self.model.row_loss(params, Xb, yb)

    def row_weights(self, params, batch_size):
        m = len(self.X)
        return torch.full(
            (m,), 1.0 / m, dtype=self.model.dtype, device=self.model.device
        )


@OBJECTIVES.register
class Utility(Objective):
    """Mean cross-entropy (the model's training loss) on the validation rows.

    Examples
    --------
    >>> from skinfluence.objectives import OBJECTIVES, Utility
    >>> isinstance(OBJECTIVES.resolve("utility"), Utility)
    True
    """

    _key = "utility"

    def bind(self, model, X_val, y_val, sensitive_features=None):
        """Return the bound objective over ``(X_val, y_val)``."""
        X, y = prepare_validation(model, X_val, y_val)
        return _MeanLoss(model, X, y)
