"""Group fairness gaps (largest difference of a rate between groups).

The one place that says which rows each fairness metric compares the groups
on: :data:`_CONDITIONS`, and which groups lack rows or have too few:
:func:`check_groups_defined`. Which label is positive and what the groups
are: :mod:`._groups`. The hard gaps below, the soft
:class:`skinfluence.objectives.Fairness` objective and the estimators'
checks before training all ask them.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.multiclass import unique_labels

from ._groups import (
    MAX_GROUPS,
    check_pos_label,
    check_sensitive_features,
    encode_groups,  # noqa: F401 (skinfluence.baselines imports it from here)
)

# metric -> its conditions on the rows: (a phrase completing "rows ...", and
# which rows: None = all, True = y == pos_label, False = y != pos_label). A
# metric's gap is taken per condition; equalized odds combines its two.
_CONDITIONS: dict[str, tuple[tuple[str, bool | None], ...]] = {
    "demographic_parity": (("of any label", None),),
    "equal_opportunity": (("with a positive label", True),),
    "equalized_odds": (
        ("with a positive label", True),
        ("with a negative label", False),
    ),
}

#: The fairness metrics' names, in the order of the table.
FAIRNESS_METRICS: tuple[str, ...] = tuple(_CONDITIONS)

_NUMBERS = {0: "no", 1: "one", 2: "two", 3: "three"}

#: Fewer rows than this in a group (under a metric's condition) warn where a
#: gap is the target of cleaning (the validation rows).
MIN_GROUP_ROWS = 20


def check_fairness_metric(metric) -> str:
    """Return `metric` if it names a fairness metric, else raise.

    Parameters
    ----------
    metric : str
        One of ``"demographic_parity"``, ``"equal_opportunity"`` and
        ``"equalized_odds"``.

    Returns
    -------
    str
        `metric` itself.

    Raises
    ------
    ValueError
        If `metric` is not one of them.

    Examples
    --------
    >>> from skinfluence.metrics import check_fairness_metric
    >>> check_fairness_metric("equalized_odds")
    'equalized_odds'
    """
    if not isinstance(metric, str) or metric not in _CONDITIONS:
        raise ValueError(f"metric must be one of {FAIRNESS_METRICS}, got {metric!r}.")
    return metric


def metric_conditions(metric, y_true, pos_label) -> list[tuple[str, np.ndarray]]:
    """Which rows a fairness metric compares the groups on.

    Parameters
    ----------
    metric : {"demographic_parity", "equal_opportunity", "equalized_odds"}
        The fairness metric.
    y_true : array-like of shape (n_samples,)
        True labels (only their length is used for demographic parity).
    pos_label : scalar
        The positive label.

    Returns
    -------
    list of (str, ndarray of bool of shape (n_samples,))
        One entry per condition whose gap the metric takes: a phrase that
        completes "rows ..." (for messages) and the mask of the rows under
        the condition. Demographic parity: all rows; equal opportunity: the
        rows with ``y_true == pos_label``; equalized odds: those, then the
        rows with ``y_true != pos_label``.

    Raises
    ------
    ValueError
        If `metric` is not a fairness metric.

    See Also
    --------
    check_groups_defined : every group has a row under every condition.

    Examples
    --------
    >>> from skinfluence.metrics import metric_conditions
    >>> [(what, mask.tolist()) for what, mask in
    ...  metric_conditions("equalized_odds", [1, 0, 1], pos_label=1)]
    [('with a positive label', [True, False, True]), \
('with a negative label', [False, True, False])]
    """
    check_fairness_metric(metric)
    y_true = np.asarray(y_true).reshape(-1)
    out = []
    for what, positive in _CONDITIONS[metric]:
        if positive is None:
            mask = np.ones(len(y_true), dtype=bool)
        else:
            mask = (y_true == pos_label) == positive
        out.append((what, mask))
    return out


def check_groups_defined(
    metric,
    y_true,
    codes,
    names,
    pos_label,
    *,
    rows: str = "rows",
    remedy: str = "",
    min_groups: int = 1,
    min_rows: int | None = None,
) -> list[tuple[str, np.ndarray]]:
    """Check that a fairness gap is defined: every group has rows to average.

    Parameters
    ----------
    metric : {"demographic_parity", "equal_opportunity", "equalized_odds"}
        The fairness metric.
    y_true : array-like of shape (n_samples,)
        True labels.
    codes : array-like of int of shape (n_samples,)
        The group of each row, as returned by :func:`encode_groups`.
    names : list
        The groups' names, indexed by `codes`.
    pos_label : scalar
        The positive label.
    rows : str, default="rows"
        What the rows are, for the message (``"validation rows"``).
    remedy : str, default=""
        What the user can do, appended to the message.
    min_groups : int, default=1
        The fewest groups accepted (an objective that compares groups needs
        two).
    min_rows : int, default=None
        Warn if a group has fewer rows than this under one of the metric's
        conditions (``MIN_GROUP_ROWS`` where the gap is cleaned for); None
        does not count.

    Returns
    -------
    list of (str, ndarray of bool)
        ``metric_conditions(metric, y_true, pos_label)``.

    Raises
    ------
    ValueError
        If there are fewer than `min_groups` groups, or a group has no row
        under one of the metric's conditions (equal opportunity: no row with
        the positive label); the message names the group and the condition.

    Warns
    -----
    UserWarning
        Once, if groups have fewer than `min_rows` rows under a condition:
        it names each such group and its count.

    See Also
    --------
    metric_conditions : the conditions checked.

    Examples
    --------
    >>> from skinfluence.metrics import check_groups_defined, encode_groups
    >>> y = [1, 0, 0, 1]
    >>> codes, names = encode_groups(["a", "a", "b", "b"])
    >>> len(check_groups_defined("equalized_odds", y, codes, names, 1))
    2
    >>> codes, names = encode_groups(["a", "a", "a", "b"])
    >>> check_groups_defined("equalized_odds", y, codes, names, 1)
    Traceback (most recent call last):
    ...
    ValueError: Group 'b' has no rows with a negative label, so the \
equalized_odds gap is undefined.
    """
    conditions = metric_conditions(metric, y_true, pos_label)
    codes = np.asarray(codes).reshape(-1)
    tail = f" {remedy}" if remedy else ""
    if len(names) < min_groups:
        held = _NUMBERS.get(len(names), str(len(names)))
        needed = _NUMBERS.get(min_groups, str(min_groups))
        raise ValueError(
            f"The {rows} hold {held} group{'' if len(names) == 1 else 's'} of "
            f"sensitive_features {list(names)}; the {metric} gap compares "
            f"{needed} groups or more.{tail}"
        )
    for what, mask in conditions:
        for g, name in enumerate(names):
            if not np.any(mask & (codes == g)):
                raise ValueError(
                    f"Group {name!r} has no {rows} {what}, so the {metric} gap is "
                    f"undefined.{tail}"
                )
    if min_rows is not None:
        _warn_small_groups(metric, conditions, codes, names, rows, tail, min_rows)
    return conditions


def _warn_small_groups(metric, conditions, codes, names, rows, tail, min_rows):
    """One warning naming every group with fewer than `min_rows` rows, and its counts."""
    small: dict[int, list[str]] = {}
    for (what, mask), (_, positive) in zip(
        conditions, _CONDITIONS[metric], strict=True
    ):
        counts = np.bincount(codes[mask], minlength=len(names))
        for g in np.flatnonzero(counts < min_rows):
            under = "" if positive is None else f" {what}"
            small.setdefault(int(g), []).append(f"{counts[g]}{under}")
    if small:
        entries = [f"{names[g]!r} has {' and '.join(p)}" for g, p in small.items()]
        listed = ", ".join(entries[:MAX_GROUPS])
        if len(entries) > MAX_GROUPS:
            listed += f" and {len(entries) - MAX_GROUPS} more groups"
        warnings.warn(
            f"Groups of sensitive_features with fewer than {min_rows} {rows}: "
            f"{listed}. The {metric} gap compares group means, and on so few "
            "rows they are noisy: the largest gap tends to be a small group's "
            "noise, which cleaning then chases. Merge small groups"
            f"{'.' + tail if tail else ' or use more rows.'}",
            UserWarning,
            stacklevel=2,
        )


def _check(y_true, y_pred, sensitive_features, pos_label):
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    n_groups = _num_rows(sensitive_features)
    if not len(y_true) == len(y_pred) == n_groups:
        raise ValueError(
            "y_true, y_pred and sensitive_features have different lengths "
            f"({len(y_true)}, {len(y_pred)}, {n_groups})."
        )
    pos_label = check_pos_label(
        unique_labels(y_true, y_pred), pos_label, source="labels of y_true and y_pred"
    )
    codes, names = check_sensitive_features(sensitive_features)
    return y_true, y_pred, codes, names, pos_label


def _num_rows(sensitive_features) -> int:
    shape = np.shape(sensitive_features)
    if len(shape) == 0:
        raise ValueError("sensitive_features must be 1-D or 2-D, got a scalar.")
    return shape[0]


def _group_selection(metric, y_true, y_pred, sensitive_features, pos_label) -> list:
    """Per condition of `metric`: each group's selection rate and row count.

    A list of ``(rates, counts)`` arrays, groups in sorted order.
    """
    y_true, y_pred, codes, names, pos_label = _check(
        y_true, y_pred, sensitive_features, pos_label
    )
    selected = (y_pred == pos_label).astype(float)
    out = []
    for _, mask in check_groups_defined(metric, y_true, codes, names, pos_label):
        groups = [mask & (codes == g) for g in range(len(names))]
        out.append((np.array([selected[g].mean() for g in groups]),
                    np.array([int(g.sum()) for g in groups])))  # fmt: skip
    return out


def _gaps(selection) -> list[float]:
    """Per condition: the largest minus the smallest rate of ``_group_selection``."""
    return [float(rates.max() - rates.min()) for rates, _ in selection]


def _hard_gaps(metric, y_true, y_pred, sensitive_features, pos_label) -> list[float]:
    """Per condition of `metric`: the largest minus smallest group selection rate."""
    return _gaps(_group_selection(metric, y_true, y_pred, sensitive_features, pos_label))


_DOCS = {
    "groups": """sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
        Group labels; several columns give intersectional groups.
    pos_label : scalar, default=None
        The positive label: predictions equal to it count as selected. It
        must be one of the labels of `y_true` and `y_pred`. ``None``: the
        greater of the two labels in ``np.unique`` order (``1`` of
        ``{0, 1}``, ``"yes"`` of ``{"no", "yes"}``): see
        :func:`check_pos_label`.""",
    "labels": """y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.""",
    "raises": """Raises
    ------
    ValueError
        If the inputs' lengths differ, the labels are not binary, `pos_label`
        is not one of them (the message names them), `sensitive_features` has
        missing values, or a group has no row the rate is taken over.

    Warns
    -----
    UserWarning
        If `sensitive_features` makes more than 20 groups or is a float
        column (see :func:`check_sensitive_features`): bin it first. Small
        groups do not warn here (they do where a gap is cleaned for: the
        validation rows of the :class:`~skinfluence.objectives.Fairness`
        objective and of the estimators).""",
}
_DOCS["labels_and_groups"] = _DOCS["labels"] + "\n    " + _DOCS["groups"]


def demographic_parity_difference(
    y_true, y_pred, *, sensitive_features, pos_label=None
) -> float:
    """Largest difference of the selection rate P(y_pred = pos) between groups.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels: the rate does not read them, but with `y_pred` they are
        the labels `pos_label` is checked against and defaults from (the
        signature of a scorer).
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    %(groups)s

    Returns
    -------
    float
        ``max_g rate_g - min_g rate_g`` (0 is parity).

    %(raises)s

    Examples
    --------
    >>> from skinfluence.metrics import demographic_parity_difference
    >>> demographic_parity_difference([0, 1, 0, 1], [1, 1, 0, 1],
    ...                               sensitive_features=["a", "a", "b", "b"])
    0.5
    >>> y_true, y_pred = ["no", "yes", "no", "yes"], ["yes", "yes", "no", "yes"]
    >>> demographic_parity_difference(  # pos_label defaults to "yes"
    ...     y_true, y_pred, sensitive_features=["a", "a", "b", "b"]
    ... )
    0.5
    """
    return _hard_gaps(
        "demographic_parity", y_true, y_pred, sensitive_features, pos_label
    )[0]


def equal_opportunity_difference(
    y_true, y_pred, *, sensitive_features, pos_label=None
) -> float:
    """Largest difference of the true-positive rate between groups.

    Parameters
    ----------
    %(labels_and_groups)s

    Returns
    -------
    float
        ``max_g TPR_g - min_g TPR_g``.

    %(raises)s

    Examples
    --------
    >>> from skinfluence.metrics import equal_opportunity_difference
    >>> y_true = ["yes", "yes", "no", "yes", "yes"]
    >>> y_pred = ["yes", "no", "yes", "yes", "yes"]
    >>> equal_opportunity_difference(  # TPR 1/2 in group a, 2/2 in b
    ...     y_true, y_pred, sensitive_features=list("aaabb"), pos_label="yes"
    ... )
    0.5
    """
    return _hard_gaps(
        "equal_opportunity", y_true, y_pred, sensitive_features, pos_label
    )[0]


def equalized_odds_difference(
    y_true, y_pred, *, sensitive_features, pos_label=None, agg="worst_case"
) -> float:
    """True-positive-rate and false-positive-rate gaps, combined.

    Parameters
    ----------
    %(labels_and_groups)s
    agg : {"worst_case", "sum"}, default="worst_case"
        ``max`` of the two gaps (fairlearn's convention) or their sum (the
        convention of the soft ``Fairness("equalized_odds")`` objective).

    Returns
    -------
    float

    %(raises)s

    Examples
    --------
    >>> from skinfluence.metrics import equalized_odds_difference
    >>> y_true, y_pred = [1, 1, 0, 1, 1, 0], [1, 0, 1, 1, 1, 0]
    >>> groups = ["a", "a", "a", "b", "b", "b"]  # TPR gap 1/2, FPR gap 1
    >>> equalized_odds_difference(y_true, y_pred, sensitive_features=groups)
    1.0
    >>> equalized_odds_difference(y_true, y_pred, sensitive_features=groups, agg="sum")
    1.5
    """
    if agg not in ("worst_case", "sum"):
        raise ValueError(f"agg must be 'worst_case' or 'sum', got {agg!r}.")
    tpr, fpr = _hard_gaps(
        "equalized_odds", y_true, y_pred, sensitive_features, pos_label
    )
    return max(tpr, fpr) if agg == "worst_case" else tpr + fpr


for _f in (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ = _f.__doc__ % _DOCS
del _f
