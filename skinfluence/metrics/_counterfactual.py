"""Counterfactual metrics: do influence scores predict what retraining does?"""

from __future__ import annotations

import numpy as np

from ._detection import _average_ranks

__all__ = ["linear_datamodeling_score", "lds_noise_ceiling"]


def _check_lds_inputs(scores, subsets, measured):
    scores = np.asarray(scores, dtype=float)
    subsets = np.asarray(subsets)
    measured = np.asarray(measured, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}.")
    if subsets.ndim != 2:
        raise ValueError(
            f"subsets must be a 2-D (n_subsets, n_samples) mask, got shape "
            f"{subsets.shape}."
        )
    if measured.ndim != 1:
        raise ValueError(f"measured must be 1-D, got shape {measured.shape}.")
    if subsets.shape[1] != len(scores):
        raise ValueError(
            f"subsets have {subsets.shape[1]} columns but there are "
            f"{len(scores)} scores."
        )
    if subsets.shape[0] != len(measured):
        raise ValueError(
            f"subsets have {subsets.shape[0]} rows but there are "
            f"{len(measured)} measured values."
        )
    if len(measured) < 2:
        raise ValueError("At least two subsets are needed for a rank correlation.")
    if subsets.dtype != bool:
        if not np.isin(subsets, (0, 1)).all():
            raise ValueError("subsets must be boolean (or hold only 0 and 1).")
        subsets = subsets.astype(bool)
    if not (np.all(np.isfinite(scores)) and np.all(np.isfinite(measured))):
        raise ValueError("scores and measured must be finite.")
    return scores, subsets, measured


def linear_datamodeling_score(scores, subsets, measured) -> float:
    """Linear datamodeling score (LDS): Spearman of predicted vs. measured.

    Each subset of the training rows is a retraining experiment: a model is
    fitted on the kept rows only, and the objective ``J`` (a validation loss,
    a fairness gap: a quantity to minimise) of that model is measured. The
    scores predict it linearly: the more beneficial the kept rows, the lower
    ``J``. The LDS is the Spearman rank correlation, over the subsets, of the
    predicted change with the measured objective.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        One score per training row, in skinfluence's convention: higher =
        more beneficial to the objective (keeping the row lowers ``J``), as
        returned by :func:`skinfluence.compute_influence`.
    subsets : array-like of bool of shape (n_subsets, n_subsets_samples)
        ``subsets[m, i]`` is True when row ``i`` was kept in the training set
        of experiment ``m`` (0/1 integers are accepted).
    measured : array-like of shape (n_subsets,)
        The objective ``J`` measured on the model retrained on each subset
        (averaged over retraining seeds, typically).

    Returns
    -------
    lds : float
        In [-1, 1]; 1 when the predicted changes order the subsets exactly as
        the measured objectives do. NaN when either the predictions or the
        measurements are all equal (the correlation is undefined).

    See Also
    --------
    skinfluence.compute_influence : the scores.

    Notes
    -----
    The predicted change of ``J`` for subset ``S`` is minus the sum of the
    kept rows' scores,

    ``pred(S) = - sum_{i in S} scores[i]``,

    and the LDS is ``spearman(pred, measured)`` (Pearson correlation of the
    average ranks, ties sharing the mean of their ranks, as
    :func:`scipy.stats.spearmanr`). The sign follows from the scores' sign:
    removing row ``i`` changes ``J`` by about ``+ scores[i] / n`` (influence
    function), so keeping ``S`` and removing its complement ``R`` changes
    ``J`` by about ``(1/n) sum_{i in R} scores[i] = (1/n) (sum_i scores[i] -
    sum_{i in S} scores[i])``: a constant minus the kept rows' sum. The
    positive factor ``1/n`` and the constant do not change ranks, so
    ``pred`` carries no scale and a method's scores can be multiplied by any
    positive number (a learning rate, ``1/n``) without changing its LDS.
    Scores in the opposite convention (higher = more harmful) give the LDS
    with its sign flipped.

    References
    ----------
    Park, Georgiev, Ilyas, Leclerc and Madry, "TRAK: Attributing Model
    Behavior at Scale", ICML 2023 (section 2.2).

    Examples
    --------
    Row 0 helps, row 2 hurts; each subset keeps two of the three rows.

    >>> import numpy as np
    >>> from skinfluence.metrics import linear_datamodeling_score
    >>> scores = np.array([2.0, 0.5, -1.0])
    >>> subsets = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=bool)
    >>> -(subsets @ scores)         # the predicted changes
    array([-2.5, -1. ,  0.5])
    >>> measured = np.array([0.30, 0.42, 0.41])  # J of each retrained model
    >>> round(linear_datamodeling_score(scores, subsets, measured), 3)
    0.5
    """
    scores, subsets, measured = _check_lds_inputs(scores, subsets, measured)
    predicted = -(subsets.astype(float) @ scores)
    a = _average_ranks(predicted)
    b = _average_ranks(measured)
    a -= a.mean()
    b -= b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    if denom == 0:
        return float("nan")
    return float((a * b).sum() / denom)


def lds_noise_ceiling(measured) -> float:
    """About the highest LDS that the retraining noise allows.

    The LDS correlates predictions with objectives measured after
    retraining, averaged over a few seeds per subset; what the seeds change
    (SGD's order, initialisation) is noise that no prediction from the
    scores can follow. This estimates the correlation of a perfect
    predictor (one that knows each subset's expected objective) with the
    seed-averaged measurements: a ceiling for
    :func:`linear_datamodeling_score` on these retrainings.

    Parameters
    ----------
    measured : array-like of shape (n_subsets, n_seeds)
        The objective measured after retraining on each subset (rows) with
        each seed (columns).

    Returns
    -------
    ceiling : float
        In [0, 1]; 1 when the seeds agree (a deterministic fit). NaN when
        the subsets' means are all equal (the LDS is undefined there too).

    See Also
    --------
    linear_datamodeling_score : the score this bounds.

    Notes
    -----
    With ``R`` seeds, ``var_w`` the variance between the seeds of a subset
    (sample variance, averaged over the subsets) and ``var_b`` the sample
    variance of the subsets' means, ``var_w / R`` of ``var_b`` is seed noise,
    and a perfect predictor correlates with the means at

    ``sqrt(max(0, 1 - var_w / (R var_b)))``,

    the square root of the means' reliability (classical test theory's
    attenuation; a Pearson correlation, a guide for the Spearman LDS).

    Examples
    --------
    Three subsets, two seeds each: ``var_w = (2 + 2 + 0) / 3``, the means
    2, 6, 9 have ``var_b = 37 / 3``, so the ceiling is ``sqrt(1 - 2 / 37)``.

    >>> import numpy as np
    >>> from skinfluence.metrics import lds_noise_ceiling
    >>> measured = np.array([[1.0, 3.0], [5.0, 7.0], [9.0, 9.0]])
    >>> round(lds_noise_ceiling(measured), 4), round(float(np.sqrt(35 / 37)), 4)
    (0.9726, 0.9726)
    >>> lds_noise_ceiling(np.array([[0.3, 0.3], [0.5, 0.5]]))  # deterministic fits
    1.0
    """
    measured = np.asarray(measured, dtype=float)
    if measured.ndim != 2:
        raise ValueError(
            f"measured must be 2-D (n_subsets, n_seeds), got shape {measured.shape}."
        )
    if measured.shape[0] < 2 or measured.shape[1] < 2:
        raise ValueError(
            "At least two subsets and two seeds are needed to separate the seed "
            f"noise from the subsets' differences, got shape {measured.shape}."
        )
    if not np.all(np.isfinite(measured)):
        raise ValueError("measured must be finite.")
    var_w = measured.var(axis=1, ddof=1).mean()
    var_b = measured.mean(axis=1).var(ddof=1)
    if var_b <= 0:
        return float("nan")
    return float(np.sqrt(max(0.0, 1.0 - var_w / measured.shape[1] / var_b)))
