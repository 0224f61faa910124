"""Baselines that influence-based cleaning is compared with."""

from __future__ import annotations

import numpy as np

from .metrics._fairness import encode_groups

__all__ = ["reweighing_weights"]


def reweighing_weights(y, *, sensitive_features) -> np.ndarray:
    """Kamiran-Calders reweighing: weights that make labels independent of groups.

    Row ``i`` of group ``g`` and label ``c`` gets
    ``w = P(g) P(c) / P(g, c)`` (frequencies over the rows given), so that in
    the weighted data every group has the same label distribution. Pass the
    weights as ``sample_weight`` to the estimator's ``fit``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
        Group labels; several columns give intersectional groups.

    Returns
    -------
    weights : ndarray of shape (n_samples,)
        Positive weights; they sum to ``n_samples`` when every combination
        of group and label occurs.

    References
    ----------
    Kamiran and Calders, "Data preprocessing techniques for classification
    without discrimination", Knowledge and Information Systems 33, 2012.

    Examples
    --------
    >>> from skinfluence.baselines import reweighing_weights
    >>> reweighing_weights([1, 1, 0, 0, 1], sensitive_features=["a", "a", "a", "b", "b"])
    array([0.9, 0.9, 1.2, 0.8, 1.2])
    """
    y = np.asarray(y).reshape(-1)
    groups, _ = encode_groups(sensitive_features)
    if len(groups) != len(y):
        raise ValueError(
            f"y has {len(y)} rows but sensitive_features has {len(groups)}."
        )
    _, labels = np.unique(y, return_inverse=True)
    labels = labels.reshape(-1)
    joint = np.zeros((groups.max() + 1, labels.max() + 1))
    np.add.at(joint, (groups, labels), 1.0)
    joint /= len(y)
    expected = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    return expected[groups, labels] / joint[groups, labels]
