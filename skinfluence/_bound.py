"""A fairness bound's measurements: the gaps of a fitted model on the
validation rows, recorded round by round in ``gap_path_``."""

from __future__ import annotations

import warnings

import numpy as np

from ._influence_inputs import Problem
from ._kernels._rows import seeded
from .metrics._fairness import _hard_gaps
from .models import as_torch_model


def hard_gap(metric, y_true, y_pred, sensitive_features, pos_label) -> float:
    """The gap of hard predictions, in the soft objective's convention.

    The gap of :mod:`skinfluence.metrics` for each of the metric's conditions,
    summed (equalized odds: the TPR gap plus the FPR gap, as
    :class:`~skinfluence.objectives.Fairness`; fairlearn takes the larger).
    The groups' warnings are left to ``fit``, which gave them once.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(
            sum(_hard_gaps(metric, y_true, y_pred, sensitive_features, pos_label))
        )


def measure_gap(fitted, problem: Problem, val, batch_size, seed, r, acted) -> dict:
    """One record of ``gap_path_``: a fit of round ``r`` on the validation rows.

    ``val`` is ``(X_val, y_val, y_val_fit, s_val)``; ``acted`` flags the
    training rows acted on before this fit. The record holds ``round``,
    ``rows_acted``, ``gap`` (the objective's value ``J``: the soft gap the
    bound is on), ``hard_gap`` (:func:`hard_gap` of the predictions) and
    ``accuracy`` (of the predictions).
    """
    X_val, y_val, y_val_fit, s_val = val
    value = objective_value(
        fitted, problem.objective, X_val, y_val_fit, s_val, batch_size, seed
    )
    info = problem.info
    pred = info.adapter.labels_from_predictions(fitted.predict(X_val), problem.classes)
    pred, y_val = np.asarray(pred).reshape(-1), np.asarray(y_val).reshape(-1)
    return {
        "round": int(r),
        "rows_acted": int(np.sum(acted)),
        "gap": float(value),
        "hard_gap": hard_gap(
            problem.objective.metric, y_val, pred, s_val, problem.pos_label
        ),
        "accuracy": float(np.mean(pred == y_val)),
    }


def _warn_bound(record, bound, prune_ratio, cap, rounds, why) -> None:
    """The cleaning stopped above the bound: say the gap, the bound, the rows used."""
    reason = {
        "cap": f"prune_ratio={prune_ratio!r} caps the rows acted on at {cap}",
        "rounds": f"rounds={rounds} are done",
        "rows": "no further row is predicted to lower the gap (without a plan "
        "past a zero gap)",
    }[why]
    warnings.warn(
        f"The validation gap is {record['gap']:.4g} (hard predictions: "
        f"{record['hard_gap']:.4g}), above the bound {bound:g}: {reason}; "
        f"{record['rows_acted']} of the {cap} rows allowed were acted on, in "
        f"{record['round']} rounds. Raise prune_ratio or rounds, or loosen the "
        "bound.",
        UserWarning,
        stacklevel=4,
    )


def objective_value(fitted, objective, X_val, y_val, s_val, batch_size, seed) -> float:
    """The objective ``J(theta)`` of a fitted model on the validation rows."""
    with seeded(seed):
        bound = objective.bind(
            as_torch_model(fitted), X_val, y_val, sensitive_features=s_val
        )
        return bound.value(batch_size=batch_size)
