"""Group fairness gaps (largest difference of a rate between groups)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def encode_groups(sensitive_features) -> tuple[np.ndarray, list]:
    """Integer group codes for each row, and the group names.

    A 2-D input (several columns) gives intersectional groups: one group per
    distinct combination of values.
    """
    if isinstance(sensitive_features, pd.DataFrame | pd.Series):
        s = sensitive_features
    else:
        s = np.asarray(sensitive_features, dtype=object)
        if s.ndim == 0:
            raise ValueError("sensitive_features must be 1-D or 2-D, got a scalar.")
    if s.ndim == 2:
        frame = pd.DataFrame(np.asarray(s, dtype=object))
        if frame.shape[1] == 1:
            values = frame.iloc[:, 0].to_numpy()
        else:
            values = frame.astype(str).agg(", ".join, axis=1).to_numpy()
    else:
        values = np.asarray(s, dtype=object).reshape(-1)
    if pd.isna(values).any():
        raise ValueError("sensitive_features contains missing values.")
    names, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.reshape(-1), names.tolist()


def _gap(
    rate: np.ndarray, codes: np.ndarray, mask: np.ndarray, names, what: str
) -> float:
    means = []
    for g, name in enumerate(names):
        sel = (codes == g) & mask
        if not sel.any():
            raise ValueError(f"Group {name!r} has no rows {what}.")
        means.append(rate[sel].mean())
    return float(max(means) - min(means))


def _check(y_true, y_pred, sensitive_features):
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    codes, names = encode_groups(sensitive_features)
    if not len(y_true) == len(y_pred) == len(codes):
        raise ValueError(
            "y_true, y_pred and sensitive_features have different lengths "
            f"({len(y_true)}, {len(y_pred)}, {len(codes)})."
        )
    return y_true, y_pred, codes, names


def demographic_parity_difference(
    y_true, y_pred, *, sensitive_features, pos_label=1
) -> float:
    """Largest difference of the selection rate P(y_pred = pos) between groups.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ignored; accepted for a scorer-compatible signature.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
        Group labels; several columns give intersectional groups.
    pos_label : scalar, default=1
        The label counted as selected.

    Returns
    -------
    float
        ``max_g rate_g - min_g rate_g`` (0 is parity).

    Examples
    --------
    >>> from skinfluence.metrics import demographic_parity_difference
    >>> demographic_parity_difference([0, 1, 0, 1], [1, 1, 0, 1],
    ...                               sensitive_features=["a", "a", "b", "b"])
    0.5
    """
    y_true, y_pred, codes, names = _check(y_true, y_pred, sensitive_features)
    sel = (y_pred == pos_label).astype(float)
    return _gap(sel, codes, np.ones(len(sel), bool), names, "")


def equal_opportunity_difference(
    y_true, y_pred, *, sensitive_features, pos_label=1
) -> float:
    """Largest difference of the true-positive rate between groups.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
        Group labels.
    pos_label : scalar, default=1
        The positive label.

    Returns
    -------
    float
        ``max_g TPR_g - min_g TPR_g``.

    Examples
    --------
    >>> from skinfluence.metrics import equal_opportunity_difference
    >>> equal_opportunity_difference([1, 1, 1, 1], [1, 0, 1, 1],
    ...                               sensitive_features=["a", "a", "b", "b"])
    0.5
    """
    y_true, y_pred, codes, names = _check(y_true, y_pred, sensitive_features)
    sel = (y_pred == pos_label).astype(float)
    return _gap(sel, codes, y_true == pos_label, names, "with a positive label")


def equalized_odds_difference(
    y_true, y_pred, *, sensitive_features, pos_label=1, agg="worst_case"
) -> float:
    """True-positive-rate and false-positive-rate gaps, combined.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
        Group labels.
    pos_label : scalar, default=1
        The positive label.
    agg : {"worst_case", "sum"}, default="worst_case"
        ``max`` of the two gaps (fairlearn's convention) or their sum (the
        convention of the soft ``Fairness("equalized_odds")`` objective).

    Returns
    -------
    float

    Examples
    --------
    >>> from skinfluence.metrics import equalized_odds_difference
    >>> equalized_odds_difference([1, 0, 1, 0], [1, 1, 1, 0],
    ...                           sensitive_features=["a", "a", "b", "b"])
    1.0
    """
    if agg not in ("worst_case", "sum"):
        raise ValueError(f"agg must be 'worst_case' or 'sum', got {agg!r}.")
    y_true, y_pred, codes, names = _check(y_true, y_pred, sensitive_features)
    sel = (y_pred == pos_label).astype(float)
    tpr = _gap(sel, codes, y_true == pos_label, names, "with a positive label")
    fpr = _gap(sel, codes, y_true != pos_label, names, "with a negative label")
    return max(tpr, fpr) if agg == "worst_case" else tpr + fpr
