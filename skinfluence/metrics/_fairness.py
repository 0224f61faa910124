"""Group fairness gaps (largest difference of a rate between groups).

The one place that says which rows each fairness metric compares the groups
on: :data:`_CONDITIONS`; which label is positive: :func:`check_pos_label`;
and which groups are too many or too small to trust:
:func:`check_sensitive_features` and :func:`check_groups_defined`. The hard
gaps below, the soft :class:`skinfluence.objectives.Fairness` objective and
the estimators' checks before training all ask them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import unique_labels

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

#: More groups than this in sensitive features warn: each value is a group.
MAX_GROUPS = 20
#: Fewer rows than this in a group (under a metric's condition) warn where a
#: gap is the target of cleaning (the validation rows).
MIN_GROUP_ROWS = 20


def _as_python(value):
    """A numpy scalar as a Python one, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def check_pos_label(labels, pos_label=None, *, source: str = "labels"):
    """The positive label of a binary target: `pos_label` checked, or the default.

    The one rule for which label is positive, shared by the fairness metrics,
    the :class:`~skinfluence.objectives.Fairness` objective and the
    estimators. It follows scikit-learn's binary convention (the positive
    class is ``classes_[1]``, the greater of the two sorted labels) and
    extends ``sklearn.metrics``' default ``pos_label=1``, which it equals on
    ``{0, 1}`` and ``{-1, 1}``, to labels of any type.

    Parameters
    ----------
    labels : array-like
        The labels present (repeats allowed), e.g. ``y`` or a model's classes.
    pos_label : scalar, default=None
        The positive label. ``None``: the greater of the two labels in
        ``np.unique`` order (``1`` of ``{0, 1}`` and of ``{-1, 1}``,
        ``"yes"`` of ``{"no", "yes"}``, ``True`` of ``{False, True}``); with
        one label present, ``1`` if it is ``0``, ``1`` or ``-1`` (as
        scikit-learn), else an error.
    source : str, default="labels"
        What `labels` are, for the messages (``"classes of y"``).

    Returns
    -------
    scalar
        The positive label (a Python scalar).

    Raises
    ------
    ValueError
        If there are more than two labels; if `pos_label` is given, two
        labels are present and it is not one of them, or it is a string
        and the labels are not (or the reverse); if `pos_label` is None and
        the one label present is not ``0``, ``1`` or ``-1``. The message
        names the labels and `pos_label`.

    Examples
    --------
    >>> from skinfluence.metrics import check_pos_label
    >>> check_pos_label(["no", "yes", "no"]), check_pos_label([0, 1])
    ('yes', 1)
    >>> check_pos_label(["no", "yes"], pos_label="no")
    'no'
    >>> check_pos_label(["no", "yes"], pos_label=1)
    Traceback (most recent call last):
    ...
    ValueError: pos_label=1 is not one of the labels ['no', 'yes'].
    """
    present = np.unique(np.asarray(labels).reshape(-1))
    shown = [_as_python(v) for v in present[:10]]
    if len(present) > 2:
        raise ValueError(
            f"A fairness gap needs a binary target; the {source} are "
            f"{len(present)} labels {shown}{' ...' if len(present) > 10 else ''}."
        )
    if pos_label is not None:
        strings = any(isinstance(v, str) for v in shown)
        if (len(present) == 2 and pos_label not in shown) or (
            isinstance(pos_label, str) != strings
        ):
            raise ValueError(
                f"pos_label={pos_label!r} is not one of the {source} {shown}."
            )
        return pos_label
    if len(present) == 2:
        return shown[-1]
    if len(present) == 1 and not isinstance(shown[0], str) and shown[0] in (0, 1, -1):
        return 1
    raise ValueError(
        f"The {source} hold one label {shown}, so the positive label cannot be "
        "told: pass pos_label."
    )


def check_sensitive_features(
    sensitive_features, *, name: str = "sensitive_features"
) -> tuple[np.ndarray, list]:
    """:func:`encode_groups`, with one warning for too many groups or floats.

    Each distinct value (or combination of values) of the sensitive features
    is a group; a continuous or many-valued feature silently makes hundreds
    of tiny groups, and the largest gap between them is noise.

    Parameters
    ----------
    sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
        Group labels, as :func:`encode_groups` takes them.
    name : str, default="sensitive_features"
        The argument's name, for the warning.

    Returns
    -------
    codes : ndarray of int of shape (n_samples,)
    names : list of str
        As :func:`encode_groups` returns them.

    Warns
    -----
    UserWarning
        Once, if there are more than ``MAX_GROUPS`` (20) groups, or a column
        has a float dtype and a value that is not a whole number (a float
        column of whole numbers, such as 0.0/1.0 codes, names groups well).
        The message gives the number of groups and the dtype and suggests
        binning.

    Examples
    --------
    >>> import warnings
    >>> from skinfluence.metrics import check_sensitive_features
    >>> check_sensitive_features(["b", "a", "b"])[1]
    ['a', 'b']
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = check_sensitive_features([0.5, 1.25, 2.0])
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    sensitive_features has a float dtype (float64) and 3 groups: ...
    """
    codes, names = encode_groups(sensitive_features)
    floats = sorted(
        {str(c.dtype) for c in _columns(sensitive_features) if _non_integral(c)}
    )
    if floats or len(names) > MAX_GROUPS:
        what = (
            f"has a float dtype ({', '.join(floats)}) and {len(names)} groups"
            if floats
            else f"holds {len(names)} groups (more than {MAX_GROUPS})"
        )
        warnings.warn(
            f"{name} {what}: every distinct value is a group of its own, and "
            "the largest gap between so many or so small groups is mostly "
            "noise. Bin it into a few groups first (e.g. with pandas.cut) or "
            "merge rare values.",
            UserWarning,
            stacklevel=2,
        )
    return codes, names


def _columns(sensitive_features):
    """The columns of sensitive features, each as an ndarray of its own dtype."""
    if isinstance(sensitive_features, pd.DataFrame):
        return [sensitive_features[c].to_numpy() for c in sensitive_features.columns]
    arr = (
        sensitive_features.to_numpy()
        if isinstance(sensitive_features, pd.Series)
        else np.asarray(sensitive_features)
    )
    return [arr] if arr.ndim < 2 else list(arr.T)


def _non_integral(values: np.ndarray) -> bool:
    """A float column holding a value that is not a whole number."""
    if values.dtype.kind != "f":
        return False
    finite = values[np.isfinite(values)]
    return bool(np.any(finite != np.round(finite)))


def encode_groups(sensitive_features) -> tuple[np.ndarray, list]:
    """Integer group codes for each row, and the group names.

    Parameters
    ----------
    sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
        Group labels. Several columns give intersectional groups: one group
        per distinct combination of values, named by the values joined with
        ``", "``.

    Returns
    -------
    codes : ndarray of int of shape (n_samples,)
        The group of each row, an index into `names`.
    names : list of str
        The groups' names, sorted.

    Raises
    ------
    ValueError
        If `sensitive_features` is a scalar or holds missing values.

    Examples
    --------
    >>> from skinfluence.metrics import encode_groups
    >>> codes, names = encode_groups(["b", "a", "b"])
    >>> codes.tolist(), names
    ([1, 0, 1], ['a', 'b'])
    >>> encode_groups([["f", "x"], ["m", "x"], ["f", "x"]])[1]
    ['f, x', 'm, x']
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


def _hard_gaps(metric, y_true, y_pred, sensitive_features, pos_label) -> list[float]:
    """Per condition of `metric`: the largest minus smallest group selection rate."""
    y_true, y_pred, codes, names, pos_label = _check(
        y_true, y_pred, sensitive_features, pos_label
    )
    selected = (y_pred == pos_label).astype(float)
    gaps = []
    for _, mask in check_groups_defined(metric, y_true, codes, names, pos_label):
        means = [selected[mask & (codes == g)].mean() for g in range(len(names))]
        gaps.append(float(max(means) - min(means)))
    return gaps


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
