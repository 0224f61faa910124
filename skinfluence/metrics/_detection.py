"""Detection metrics: how well a score ranks the corrupted rows first.

A detector gives one score per row, larger = more suspicious (the convention
of :func:`skinfluence.signals.compute_signals`); the truth is the boolean
mask returned by :func:`skinfluence.datasets.flip_labels` or
:func:`skinfluence.datasets.inject_anomalies`.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

__all__ = ["detection_f1", "detection_roc_auc", "top_k_mask"]


def _check(mask, scores) -> tuple[np.ndarray, np.ndarray]:
    mask = np.asarray(mask)
    scores = np.asarray(scores, dtype=float)
    if mask.ndim != 1 or scores.ndim != 1:
        raise ValueError("mask and scores must be 1-D.")
    if len(mask) != len(scores):
        raise ValueError(
            f"mask and scores have different lengths ({len(mask)} and {len(scores)})."
        )
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("mask must be boolean (or hold only 0 and 1).")
        mask = mask.astype(bool)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity.")
    return mask, scores


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, ties given the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(xs)]
    ranks_sorted = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    ranks = np.empty(len(x))
    ranks[order] = ranks_sorted
    return ranks


def detection_roc_auc(mask, scores) -> float:
    """Area under the ROC curve of ``scores`` against the corrupted rows.

    The probability that a corrupted row scores higher than a clean one (ties
    count one half): the Mann-Whitney statistic ``U / (n_pos n_neg)``.
    0.5 is a random ranking, 1 a perfect one.

    Parameters
    ----------
    %(mask_scores)s

    Returns
    -------
    float

    See Also
    --------
    detection_f1 : F1 of the top-ranked rows.

    Examples
    --------
    >>> from skinfluence.metrics import detection_roc_auc
    >>> mask = [False, True, False, True]
    >>> detection_roc_auc(mask, [0.1, 0.9, 0.4, 0.3])  # 1 of 4 pairs misordered
    0.75
    >>> detection_roc_auc(mask, [0.1, 0.9, 0.4, 0.4])  # a tie counts one half
    0.875
    """
    mask, scores = _check(mask, scores)
    n_pos = int(mask.sum())
    n_neg = len(mask) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("The ROC AUC needs both corrupted and clean rows in mask.")
    ranks = _average_ranks(scores)
    u = ranks[mask].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def top_k_mask(scores, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` highest scores (ties: the earlier row first)."""
    scores = np.asarray(scores, dtype=float)
    if not (0 <= k <= len(scores)):
        raise ValueError(f"k must be in [0, {len(scores)}], got {k}.")
    order = np.argsort(-scores, kind="stable")
    out = np.zeros(len(scores), dtype=bool)
    out[order[:k]] = True
    return out


def detection_f1(mask, scores, *, contamination=None) -> float:
    """F1 score when the ``floor(c n)`` highest-scored rows are flagged.

    Parameters
    ----------
    %(mask_scores)s
    contamination : float in [0, 1], default=None
        The share ``c`` of rows to flag; ``None`` means the true share,
        ``mask.mean()``, as in a benchmark where it is known. ``floor(c n)``
        is taken up to floating-point error (``0.29 * 100`` flags 29 rows).
        Ties at the cut are broken by row order.

    Returns
    -------
    float
        ``2 TP / (2 TP + FP + FN)`` over the rows, 0.0 when ``TP = 0``.

    See Also
    --------
    detection_roc_auc : threshold-free ranking quality.

    Examples
    --------
    >>> from skinfluence.metrics import detection_f1
    >>> mask, scores = [False, True, False, True], [0.1, 0.9, 0.4, 0.3]
    >>> detection_f1(mask, scores)  # the top 2 rows flagged: TP = FP = FN = 1
    0.5
    >>> round(detection_f1(mask, scores, contamination=0.25), 3)  # the top row
    0.667
    """
    mask, scores = _check(mask, scores)
    if contamination is None:
        contamination = float(mask.mean())
    if not isinstance(contamination, Real) or not (0 <= contamination <= 1):
        raise ValueError(f"contamination must be in [0, 1], got {contamination!r}.")
    k = int(np.floor(contamination * len(mask) + 1e-9))
    flagged = top_k_mask(scores, k)
    tp = int(np.sum(flagged & mask))
    fp = int(np.sum(flagged & ~mask))
    fn = int(np.sum(~flagged & mask))
    return 0.0 if tp == 0 else 2.0 * tp / (2.0 * tp + fp + fn)


_DOCS = {
    "mask_scores": """mask : array-like of bool, shape (n_samples,)
        True for the corrupted rows.
    scores : array-like of shape (n_samples,)
        Larger = more suspicious.""",
}
for _f in (detection_roc_auc, detection_f1):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ = _f.__doc__ % _DOCS
del _f
