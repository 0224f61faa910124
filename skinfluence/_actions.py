"""What happens to the detrimental rows: the plan of one round of cleaning.

Scores follow the package's sign: ``s_i`` high means row ``i`` helps the
objective. Acting on row ``i`` with strength ``delta_i`` in [0, 1] (removing
it, ``delta_i = 1``; down-weighting it to ``1 - delta_i``; replacing its label)
changes the objective by about ``delta_i * t_i / n``, with ``n`` the rows of
the fit and ``t_i`` the effect of acting fully on row ``i``: its score for
removal and reweighting, ``s_i(y_i) - s_i(c)`` for a new label ``c``. This is
the influence-function reading of the scores (removing row ``i`` changes
``J`` by ``+s_i / n`` when ``s_i = <(H + lambda I)^-1 grad J, grad l_i>``,
``method="influence_function"``); the other methods' scores are read in the
same units, as if the curvature were the identity. So the rows to act on are
those of lowest effect, and a plan is a vector ``delta``.

With a constraint (Li and Liu, ICML 2022) ``delta`` solves the linear program

    minimise   sum_i delta_i t_i             (the target objective's change)
    subject to sum_i delta_i u_i <= 0        (the constraint's change: no harm)
               sum_i delta_i <= k            (the budget: prune_ratio * n rows)
               sum_i delta_i t_i >= floor    (no plan past the objective's zero)
               0 <= delta_i <= 1

with ``t`` and ``u`` the per-row effects of the action on the target and the
constrained objective. The target objectives are non-negative (a loss, the
absolute value of a fairness gap) and a predicted change larger than the
current value overshoots: ``floor = -n * J(theta)`` keeps the predicted value
``J + sum_i delta_i t_i / n`` at or above zero. A vertex of this program has at
most three fractional entries; :func:`round_plan` turns it into a 0/1 plan
that keeps the three constraints.

With a bound on the target (``Fairness(bound=b)``) the rows are ranked once,
by the first fit's effects, and a search over measured refits
(``_bound.search_to_bound``) chooses how many of them to act on. Its first
count is sized by the predicted change: the bound is on the gap ``H`` of hard
predictions while the effects predict the soft gap ``J``, so ``J`` is asked to
fall by the share ``H`` must, ``J * (1 - b / H)`` (``_bound.first_count``):
:func:`rows_to_bound` counts the fewest rows, lowest effect first, whose
predicted change ``sum_i t_i / n`` reaches ``-J * (1 - b / H)`` without
passing ``-J``. Every count ``k`` the search measures is planned by
:func:`plan_round` (with the constraint, without the floor: the measured gap
decides).

The constraint and the floor hold for the *predicted* changes, which add the
rows' first-order effects. Measured after the refit they do not hold
exactly: on Adult (``benchmarks/results/fairness_constraint.md``, development
seeds, DP objective, ``constraint="utility"``, three rounds) the validation
cross-entropy rose in every run, by 0.013-0.042 (from 0.32) when removing or
reweighting 5-10% of the rows and by 0.032-0.065 when relabelling them; without
the constraint (LogisticRegression) removal raised it by 0.07-0.16 and
relabelling by 0.08-0.10 (unconstrained reweighting, whose ramp keeps most of
the rows' weight, by 0.003).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

ACTIONS = ("remove", "reweight", "relabel")

#: LP entries within this of 0 or 1 count as 0 or 1
_INTEGRAL = 1e-9
#: the fractional entries of an LP solution whose subsets are all tried
_MAX_FRACTIONAL = 12


def n_prune(prune_ratio, n: int) -> int:
    """The budget of rows acted on: ``floor(prune_ratio * n)``.

    Robust to floating-point rounding (``0.07 * 100`` is 7, not 6).
    """
    return int(math.floor(prune_ratio * n + 1e-9))


def removal_floor(value: float, n: int) -> float:
    """The lowest ``sum_i delta_i t_i`` that keeps the predicted objective >= 0.

    Parameters
    ----------
    value : float
        The target objective's current value ``J(theta)`` on the validation
        rows (non-negative: a loss, an absolute gap).
    n : int
        The rows of the fit the effects were scored on: acting on row ``i``
        changes ``J`` by about ``t_i / n``.

    Returns
    -------
    float
        ``-n * J``, at most 0 (so that acting on no row is always allowed).
    """
    return -float(n) * max(float(value), 0.0)


def rows_to_bound(target: np.ndarray, need: float, floor: float | None = None) -> int:
    """The fewest rows, lowest effect first, whose summed effect reaches ``-need``.

    Parameters
    ----------
    target : ndarray of shape (n_rows,)
        Per-row effect of acting fully on the row (in units of ``1 / n``:
        acting on row ``i`` changes the objective by about ``t_i / n``).
    need : float
        The predicted fall needed, in the same units (a bound's first count:
        ``n * J * (1 - bound / H)``, ``_bound.first_count``); at most 0
        needs no row.
    floor : float or None, default=None
        :func:`removal_floor`: the rows counted stop before their summed
        effect passes it (never a plan past the objective's zero).

    Returns
    -------
    int
        The count: all rows of negative effect when they do not reach
        ``-need`` together; 0 when ``need <= 0`` or no row lowers the target.
    """
    if need <= 0:
        return 0
    t = np.sort(np.asarray(target, dtype=np.float64))
    csum = np.cumsum(t[t < 0])  # decreasing
    reached = np.flatnonzero(csum <= -need)
    k = int(reached[0]) + 1 if len(reached) else len(csum)
    if floor is not None:
        k = min(k, int(np.sum(csum >= min(floor, 0.0))))
    return k


def solve_constrained(
    target: np.ndarray,
    constraint: np.ndarray,
    k: int,
    *,
    floor: float | None = None,
) -> np.ndarray:
    """The Li-Liu linear program over ``delta`` (see the module docstring).

    Parameters
    ----------
    target, constraint : ndarray of shape (n_rows,)
        Per-row effect on the target objective and on the constrained one of
        acting fully on the row (lower is better for both).
    k : int
        The budget: at most ``k`` rows' worth of action.
    floor : float or None, default=None
        The lowest allowed ``sum_i delta_i t_i`` (:func:`removal_floor`); at
        most 0. None: no floor.

    Returns
    -------
    delta : ndarray of shape (n_rows,), in [0, 1]
        All zeros when no action lowers the target without harming the
        constraint.
    """
    from scipy.optimize import linprog

    n = len(target)
    if k <= 0 or n == 0 or not np.any(target < 0):
        return np.zeros(n)  # no action lowers the target
    scale_t = np.abs(target).max()
    scale_u = max(np.abs(constraint).max(), np.finfo(float).tiny)
    rows = [constraint / scale_u, np.ones(n)]
    rhs = [0.0, float(k)]
    if floor is not None and floor > target[target < 0].sum():  # else it cannot bind
        rows.append(-target / scale_t)
        rhs.append(-min(floor, 0.0) / scale_t)
    res = linprog(
        target / scale_t,
        A_ub=np.vstack(rows),
        b_ub=np.array(rhs),
        bounds=(0.0, 1.0),
        method="highs",
    )
    if res.status != 0:  # pragma: no cover - delta = 0 is always feasible
        raise RuntimeError(f"The constrained selection failed: {res.message}")
    return np.clip(res.x, 0.0, 1.0)


def _feasible(count, t_sum, u_sum, k, floor) -> bool:
    return count <= k and u_sum <= 0 and (floor is None or t_sum >= floor)


def round_plan(
    delta: np.ndarray,
    target: np.ndarray,
    constraint: np.ndarray,
    k: int,
    *,
    floor: float | None = None,
) -> np.ndarray:
    """A 0/1 plan from the linear program's ``delta`` that keeps its constraints.

    The rows with ``delta_i = 1`` are kept; of the fractional rows (at most
    three at a vertex) the subset is added that gives the lowest
    ``sum_i t_i`` with ``sum delta <= k``, ``sum delta u <= 0`` and
    ``sum delta t >= floor`` (ties: fewer rows). If no subset does, rows are
    dropped from the kept ones until the plan holds: the one of largest
    ``u`` while the constraint is broken, the one of smallest ``|t|`` (among
    ``t < 0``) that lifts the sum above the floor, else of most negative
    ``t``, while the floor is broken. Each drop removes a row, a broken
    constraint always has a row whose drop helps (a positive sum has a
    positive term), and the empty plan holds every constraint, so the
    result does. Last, rows not in the plan are added, lowest ``t`` first,
    each only if the plan still holds every constraint.

    Parameters
    ----------
    delta : ndarray of shape (n_rows,)
        A solution of :func:`solve_constrained`.
    target, constraint : ndarray of shape (n_rows,)
        As for :func:`solve_constrained`.
    k : int
        The budget.
    floor : float or None, default=None
        As for :func:`solve_constrained`.

    Returns
    -------
    ndarray of shape (n_rows,)
        0.0 or 1.0 per row.
    """
    t = np.asarray(target, dtype=np.float64)
    u = np.asarray(constraint, dtype=np.float64)
    floor = None if floor is None else min(floor, 0.0)
    chosen = delta >= 1 - _INTEGRAL
    frac = np.flatnonzero((delta > _INTEGRAL) & ~chosen)
    best = None
    if len(frac) <= _MAX_FRACTIONAL:
        base = (int(chosen.sum()), t[chosen].sum(), u[chosen].sum())
        best_key = None
        for m in range(len(frac) + 1):
            for subset in itertools.combinations(frac, m):
                idx = list(subset)
                count, t_sum = base[0] + m, base[1] + t[idx].sum()
                if not _feasible(count, t_sum, base[2] + u[idx].sum(), k, floor):
                    continue
                if best_key is None or (t_sum, count) < best_key:
                    best_key, best = (t_sum, count), idx
    if best is not None:
        chosen[best] = True
    else:
        chosen = _repair(chosen, t, u, k, floor)
    return _augment(chosen, t, u, k, floor).astype(float)


def _repair(chosen, t, u, k, floor) -> np.ndarray:
    """Drop rows of ``chosen`` until the plan keeps the budget, constraint and floor."""
    chosen = chosen.copy()
    while True:
        idx = np.flatnonzero(chosen)
        t_sum, u_sum = t[idx].sum(), u[idx].sum()
        if _feasible(len(idx), t_sum, u_sum, k, floor):
            return chosen
        if len(idx) > k:  # the highest effect: the least useful
            drop = idx[np.argmax(t[idx])]
        elif u_sum > 0:  # the largest harm to the constraint
            drop = idx[np.lexsort((-t[idx], -u[idx]))[0]]
        else:  # below the floor: some t < 0
            neg = idx[t[idx] < 0]
            lifts = neg[t_sum - t[neg] >= floor]
            drop = lifts[np.argmax(t[lifts])] if len(lifts) else neg[np.argmin(t[neg])]
        chosen[drop] = False


def reweight_strength(values: np.ndarray, edge: float, low: float) -> np.ndarray:
    """Down-weighting strength: 1 at ``low``, falling linearly to 0 at ``edge``.

    ``low`` is the lowest score acted on and ``edge`` the ``(k + 1)``-th lowest
    (the ``k``-th when every row is acted on); all 1 when ``edge <= low``.
    """
    span = edge - low
    return np.ones_like(values) if span <= 0 else (edge - values) / span


def _augment(chosen, t, u, k, floor) -> np.ndarray:
    """Add rows to the feasible plan ``chosen``, lowest ``t`` first, each one
    only if the plan still keeps the budget, the constraint and the floor."""
    chosen = chosen.copy()
    count, t_sum, u_sum = int(chosen.sum()), t[chosen].sum(), u[chosen].sum()
    for i in np.argsort(t, kind="stable"):
        if t[i] >= 0 or count >= k:
            break
        if not chosen[i] and _feasible(count + 1, t_sum + t[i], u_sum + u[i], k, floor):
            chosen[i] = True
            count, t_sum, u_sum = count + 1, t_sum + t[i], u_sum + u[i]
    return chosen


def plan_round(
    target: np.ndarray,
    k: int,
    action: str,
    *,
    constraint: np.ndarray | None = None,
    floor: float | None = None,
) -> np.ndarray:
    """``delta`` for one round: which rows, and how strongly.

    Without a constraint, "remove" acts on the ``k`` lowest targets (ties by
    position); "relabel" on the ``k`` lowest that are negative (a label
    change that is not predicted to help is not made); "reweight"
    down-weights the ``k`` lowest in proportion to how far their score lies
    below the next one: the lowest gets weight 0, and the weights rise
    linearly to 1 at the ``(k + 1)``-th score. With a constraint the linear
    program decides (with ``floor``, never past the objective's zero):
    "reweight" uses its fractional ``delta``; "remove" and "relabel" act on
    the rows of :func:`round_plan`, which keeps the budget, the constraint
    and the floor.
    """
    n = len(target)
    delta = np.zeros(n)
    if constraint is not None:
        delta = solve_constrained(target, constraint, k, floor=floor)
        if action != "reweight":
            delta = round_plan(delta, target, constraint, k, floor=floor)
        return delta
    order = np.argsort(target, kind="stable")
    rows = np.sort(order[:k])
    if action == "relabel":
        rows = rows[target[rows] < 0]
    if action == "reweight" and len(rows):
        edge = target[order[k]] if k < n else target[rows].max()
        delta[rows] = reweight_strength(target[rows], edge, target[rows].min())
    else:
        delta[rows] = 1.0
    return delta


def action_effects(scores: np.ndarray, codes: np.ndarray, action: str):
    """Per-row effect of acting on each row (lower = act first), and new labels.

    ``scores`` has shape ``(n_labels, n_rows)``. For removal and reweighting
    it is the score itself. For relabelling row ``i`` from ``y_i`` to ``c``
    the objective moves by ``s_i(y_i) - s_i(c)`` (the gradient of the
    replaced loss leaves, the new one enters): the effect is the best over
    ``c != y_i``.
    """
    if action != "relabel":
        return scores[0], None
    rows = np.arange(scores.shape[1])
    change = scores[codes, rows][None, :] - scores
    change[codes, rows] = np.inf
    best = np.argmin(change, axis=0)
    return change[best, rows], best
