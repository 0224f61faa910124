"""The inputs of a fairness gap: which label is positive, and the groups.

One rule each, asked by the metrics, the
:class:`~skinfluence.objectives.Fairness` objective and the estimators:
:func:`check_pos_label` (which label is positive, and that there are two),
:func:`encode_groups` (the groups of the sensitive features) and
:func:`check_sensitive_features` (the same, warning when the groups are too
many or a float column).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

#: More groups than this in sensitive features warn: each value is a group.
MAX_GROUPS = 20


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
