"""Shared checks for validation data."""

from __future__ import annotations

from .._kernels import all_finite


def prepare_validation(model, X_val, y_val):
    """Validate and convert validation rows to the model's tensors."""
    if X_val is None or y_val is None:
        raise ValueError("This objective needs validation rows: pass X_val and y_val.")
    X = model.prepare_X(X_val)
    y = model.prepare_y(y_val)
    if len(X) != len(y):
        raise ValueError(
            f"X_val and y_val have different lengths ({len(X)} and {len(y)})."
        )
    if len(X) == 0:
        raise ValueError("The validation set is empty.")
    if not all_finite(X):
        raise ValueError("X_val contains NaN or infinity.")
    return X, y
