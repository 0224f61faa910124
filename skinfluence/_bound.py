"""A fairness bound: the gaps of a fitted model on the validation rows (one
record of ``gap_path_`` per measured fit) and the search over how many rows
to act on (:func:`search_to_bound`)."""

from __future__ import annotations

import warnings

import numpy as np

from ._actions import rows_to_bound
from ._influence_inputs import Problem
from ._kernels._rows import seeded
from .metrics._fairness import _gaps, _group_selection, _hard_gaps
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


def signed_gap(selection, order) -> float:
    """The gap along the first fit's order of the groups: negative once it flips.

    ``selection`` holds the selection rates (and counts) per condition and
    group (``_group_selection``); ``order`` the ``(highest, lowest)`` group
    per condition at the first fit. Summed over the conditions, as the gaps
    are.
    """
    pairs = zip(selection, order, strict=True)
    return float(sum(rates[hi] - rates[lo] for (rates, _), (hi, lo) in pairs))


def group_order(selection) -> list:
    """Per condition, the groups of highest and lowest rate (see :func:`signed_gap`)."""
    return [(int(np.argmax(rates)), int(np.argmin(rates))) for rates, _ in selection]


def warn_noisy_gap(selection, bound) -> None:
    """Warn when the validation rows measure the gap less precisely than the bound.

    Two standard errors of the first fit's gap, a difference of two groups'
    rates (``sqrt(p_a (1 - p_a) / n_a + p_b (1 - p_b) / n_b)``, summed in
    variance over the metric's conditions), against the bound: the search
    stops on the measured gap, and a held-out gap differs from it by about
    that much.
    """
    var = 0.0
    for (r, n), (hi, lo) in zip(selection, group_order(selection), strict=True):
        var += r[hi] * (1 - r[hi]) / n[hi] + r[lo] * (1 - r[lo]) / n[lo]
    noise = 2 * float(np.sqrt(var))
    if noise > bound:
        sizes = ", ".join(str(int(n)) for _, counts in selection for n in counts)
        warnings.warn(
            f"The validation rows measure the gap to about +/-{noise:.3g} (two "
            f"standard errors of a difference of rates, groups of {sizes} "
            f"rows), more than the bound {bound:g}: the search stops on a "
            "noisy measurement, and the gap on other rows will differ from it "
            "by about as much. More validation rows (validation_size) narrow it.",
            UserWarning,
            stacklevel=4,
        )


def measure_gap(fitted, problem: Problem, val, batch_size, seed, r, acted) -> dict:
    """One record of ``gap_path_``: a fit of round ``r`` on the validation rows.

    ``val`` is ``(X_val, y_val, y_val_fit, s_val)``; ``acted`` flags the
    training rows acted on before this fit. The record holds ``round``,
    ``rows_acted``, ``gap`` (the objective's value ``J``, the soft gap the
    scores predict), ``hard_gap`` (:func:`hard_gap` of the predictions: the
    gap the bound is on) and ``accuracy`` (of the predictions); and the
    selection rates and counts per condition and group (``_group_selection``,
    for :func:`signed_gap` and :func:`warn_noisy_gap`).
    """
    X_val, y_val, y_val_fit, s_val = val
    value = objective_value(
        fitted, problem.objective, X_val, y_val_fit, s_val, batch_size, seed
    )
    info = problem.info
    pred = info.adapter.labels_from_predictions(fitted.predict(X_val), problem.classes)
    pred, y_val = np.asarray(pred).reshape(-1), np.asarray(y_val).reshape(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fit warned about the groups
        selection = _group_selection(
            problem.objective.metric, y_val, pred, s_val, problem.pos_label
        )
    record = {
        "round": int(r),
        "rows_acted": int(np.sum(acted)),
        "gap": float(value),
        "hard_gap": float(sum(_gaps(selection))),
        "accuracy": float(np.mean(pred == y_val)),
    }
    return record, selection


def _warn_bound(record, bound, prune_ratio, cap, rounds, why) -> None:
    """The cleaning stopped above the bound: say the gap, the bound, the rows used."""
    reason = {
        "cap": f"prune_ratio={prune_ratio!r} caps the rows acted on at {cap}",
        "rounds": f"rounds={rounds} refits are done",
        "rows": "no row is predicted to lower the gap",
        "jump": "the gap passes from above the bound to past it on the other "
        "side within one step of the search's grid (a coarse validation gap: "
        "more validation rows help)",
    }[why]
    warnings.warn(
        f"The validation gap of hard predictions is {record['hard_gap']:.4g} "
        f"(soft: {record['gap']:.4g}), above the bound {bound:g}: {reason}; "
        f"the final model acts on {record['rows_acted']} of the {cap} rows "
        "allowed. Raise prune_ratio or rounds, or loosen the bound.",
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


#: a search stops once a measured gap lies within this share of the bound, at or below it
SEARCH_TOLERANCE = 0.25


def grid_step(n: int) -> int:
    """The search's grid of row counts: multiples of ``n / 400`` (0.25% of the rows)."""
    return max(1, n // 400)


def first_count(effect, value, hard, bound, n, floor) -> int:
    """The rows predicted to bring the gap to the bound: the search's first ``k``.

    The prediction is in the soft gap ``value`` (``J``), the bound on the hard
    one: the soft gap is asked to fall by the share the hard gap must,
    ``J * (1 - bound / hard)`` (:func:`skinfluence._actions.rows_to_bound`).
    """
    share = 1.0 - bound / hard if hard > 0 else 0.0
    return rows_to_bound(effect, n * value * share, floor)


def search_to_bound(measure, first, k0: int, cap: int, bound: float, rounds: int,
                    step: int = 1):  # fmt: skip
    """The fewest rows acted on whose refit's hard validation gap is at most ``bound``.

    One ranking of the rows (the first fit's scores) and a search over how
    many of them to act on. The search follows the *signed* gap (along the
    first fit's order of the groups, :func:`signed_gap`), which keeps falling
    past zero where the gap itself turns and grows: ``k0`` first (the
    influence prediction, on the grid of ``step`` rows), then, while every
    refit is above the bound, the secant through the last two measured gaps
    (doubling when they do not fall); once one is at or below it, regula
    falsi between the largest ``k`` above and the smallest at or below. A
    ``k`` is accepted when its gap (absolute) is at most ``bound``. The
    search stops when an accepted gap that has not passed zero (signed gap
    >= 0: a ``k`` past the crossing acts on more rows than needed) lies
    within ``SEARCH_TOLERANCE * bound`` of the bound, when the bracket is one
    step wide, when ``cap`` rows are measured above the bound, or after
    ``rounds`` refits.

    Parameters
    ----------
    measure : callable
        ``measure(k) -> (gap, signed)``: the refit's hard gap and signed gap
        after acting on the first ``k`` rows of the ranking.
    first : tuple of float
        ``(gap, signed)`` of the first fit (``k = 0``; ``signed == gap``).
    k0 : int
        The first ``k`` to measure.
    cap : int
        The most rows acted on.
    bound : float
        The bound on the hard gap.
    rounds : int
        The most refits.
    step : int, default=1
        The grid of ``k`` (:func:`grid_step`).

    Returns
    -------
    k : int
        The smallest measured ``k`` accepted, else the ``k`` of the lowest
        measured gap.
    why : str or None
        None when the bound is reached, else why not: "cap", "rounds",
        "rows" (no row is predicted to lower the gap) or "jump" (the gap
        passes from above the bound to below ``-bound`` within one step).
    """
    gap, signed = {0: first[0]}, {0: first[1]}
    if gap[0] <= bound:
        return 0, None
    if cap <= 0 or k0 <= 0:
        return 0, "cap" if cap <= 0 else "rows"

    def snap(k, lo, hi):  # on the grid, at least a step inside (lo, hi)
        k = int(round(k / step)) * step
        return int(min(max(k, lo + step), hi - step))

    aim = bound * (1 - SEARCH_TOLERANCE / 2)  # inside the tolerance, not at its edge
    lo, hi, k = 0, None, snap(k0, 0, cap + step)  # signed[lo] > bound >= signed[hi]
    weight = {}  # Illinois: an end kept twice in a row counts half
    for _ in range(rounds):
        gap[k], signed[k] = measure(k)
        if signed[k] > bound and (hi is None or k < hi):
            weight = {"hi": weight.get("hi", 1.0) / 2} if k > lo else {}
            lo = max(lo, k)
        elif signed[k] <= bound and (hi is None or k < hi):
            weight = {"lo": weight.get("lo", 1.0) / 2} if hi is not None else {}
            hi = k
        near = [j for j in gap if 0 <= signed[j] and gap[j] <= bound]  # not past zero
        if near and bound - gap[min(near)] <= SEARCH_TOLERANCE * bound:
            break
        if (hi is not None and hi - lo <= step) or (hi is None and lo >= cap):
            break
        if hi is None:  # the secant through the last two, above the bound
            a, b = sorted(j for j in signed if j <= lo)[-2:]  # 0 and lo at least
            fall = signed[a] - signed[b]
            nxt = b + (signed[b] - aim) * (b - a) / fall if fall > 0 else 2 * b
            k = snap(nxt, lo, cap + step)
        else:  # regula falsi
            f_lo = (signed[lo] - aim) * weight.get("lo", 1.0)
            f_hi = (signed[hi] - aim) * weight.get("hi", 1.0)
            k = snap(lo + f_lo / max(f_lo - f_hi, 1e-12) * (hi - lo), lo, hi)
        if k in gap or k <= lo or (hi is not None and k >= hi):
            break
    accepted = [j for j in gap if gap[j] <= bound]
    if accepted:
        return min(accepted), None
    best = min(gap, key=lambda j: (gap[j], j))
    if lo >= cap:
        return best, "cap"
    return best, "jump" if hi is not None and hi - lo <= step else "rounds"
