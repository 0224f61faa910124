"""What happens to the detrimental rows: the plan of one round of cleaning.

Scores follow the package's sign: ``s_i`` high means row ``i`` helps the
objective. Acting on row ``i`` with strength ``delta_i`` in [0, 1] (removing
it, ``delta_i = 1``; down-weighting it to ``1 - delta_i``; replacing its label)
changes the objective by about ``delta_i * s_i / n`` for removal (the
influence-function reading of the scores), so the rows to act on are those
of lowest score, and a plan is a vector ``delta``.

With a constraint (Li and Liu, ICML 2022) ``delta`` solves the linear program

    minimise   sum_i delta_i t_i             (the target objective's change)
    subject to sum_i delta_i u_i <= 0        (the constraint's change: no harm)
               sum_i delta_i <= k            (the budget: prune_ratio * n rows)
               0 <= delta_i <= 1

with ``t`` and ``u`` the per-row effects of the action on the target and the
constrained objective (for removal, the scores themselves). A vertex of this
program has at most two fractional entries, so the plan is nearly 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIONS = ("remove", "reweight", "relabel")


@dataclass
class Plan:
    """Per training row: how strongly it is acted on, and its new label.

    Attributes
    ----------
    delta : ndarray of shape (n_rows,)
        Strength in [0, 1]: 1 removes the row (or relabels it), a fraction
        down-weights it to ``1 - delta``.
    new_codes : ndarray of int of shape (n_rows,) or None
        For "relabel": the class index each row would take.
    """

    delta: np.ndarray
    new_codes: np.ndarray | None = None

    def acted(self) -> np.ndarray:
        """Positions of the rows acted on (strength at least one half)."""
        return np.flatnonzero(self.delta >= 0.5)


def budget(prune_ratio, target: np.ndarray) -> int:
    """Rows acted on: ``floor(prune_ratio * n)``, or the harmful ones for "negative"."""
    if prune_ratio == "negative":
        return int(np.sum(target < 0))
    return int(np.floor(prune_ratio * len(target) + 1e-9))


def lowest(target: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` lowest values (ties by position), sorted."""
    return np.sort(np.argsort(target, kind="stable")[:k])


def solve_constrained(target: np.ndarray, constraint: np.ndarray, k: int) -> np.ndarray:
    """The Li-Liu linear program over ``delta`` (see the module docstring).

    Parameters
    ----------
    target, constraint : ndarray of shape (n_rows,)
        Per-row effect on the target objective and on the constrained one of
        acting fully on the row (lower is better for both).
    k : int
        The budget: at most ``k`` rows' worth of action.

    Returns
    -------
    delta : ndarray of shape (n_rows,), in [0, 1]
        All zeros when no action lowers the target without harming the
        constraint.
    """
    from scipy.optimize import linprog

    n = len(target)
    if k <= 0 or n == 0:
        return np.zeros(n)
    scale_t = max(np.abs(target).max(), np.finfo(float).tiny)
    scale_u = max(np.abs(constraint).max(), np.finfo(float).tiny)
    res = linprog(
        target / scale_t,
        A_ub=np.vstack([constraint / scale_u, np.ones(n)]),
        b_ub=np.array([0.0, float(k)]),
        bounds=(0.0, 1.0),
        method="highs",
    )
    if res.status != 0:  # pragma: no cover - the program is always feasible
        raise RuntimeError(f"The constrained selection failed: {res.message}")
    return np.clip(res.x, 0.0, 1.0)


def plan_round(
    target: np.ndarray,
    k: int,
    action: str,
    *,
    constraint: np.ndarray | None = None,
) -> np.ndarray:
    """``delta`` for one round: which rows, and how strongly.

    Without a constraint, "remove" acts on the ``k`` lowest targets (ties by
    position); "relabel" on the ``k`` lowest that are negative (a label
    change that is not predicted to help is not made); "reweight"
    down-weights the ``k`` lowest in proportion to how far their score lies
    below the next one: the lowest gets weight 0, and the weights rise
    linearly to 1 at the ``(k + 1)``-th score. With a constraint the linear
    program decides, and "remove"/"relabel" act on the rows of strength >= 1/2.
    """
    n = len(target)
    delta = np.zeros(n)
    if constraint is not None:
        delta = solve_constrained(target, constraint, k)
        if action != "reweight":
            delta = (delta >= 0.5).astype(float)
        return delta
    order = np.argsort(target, kind="stable")
    rows = np.sort(order[:k])
    if action == "relabel":
        rows = rows[target[rows] < 0]
    if action == "reweight" and len(rows):
        edge = target[order[k]] if k < n else target[rows].max()
        span = edge - target[rows].min()
        delta[rows] = 1.0 if span <= 0 else (edge - target[rows]) / span
    else:
        delta[rows] = 1.0
    return delta
