"""Controlled corruption of a data set: label flips and injected anomalies.

Both helpers return the mask of the rows they corrupted, the ground truth the
detection metrics (:mod:`skinfluence.metrics`) score a signal against.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sklearn.utils import check_random_state

__all__ = ["flip_labels", "inject_anomalies"]

FLIP_KINDS = ("uniform", "class")


def _check_rate(rate, *, upper_open: bool = False) -> float:
    if not isinstance(rate, Real) or isinstance(rate, bool):
        raise TypeError(f"rate must be a float, got {type(rate).__name__}.")
    rate = float(rate)
    if not (0.0 <= rate < 1.0 if upper_open else 0.0 <= rate <= 1.0):
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"rate must be in {interval}, got {rate!r}.")
    return rate


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def _labels(y) -> tuple[np.ndarray, np.ndarray]:
    values = y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y)
    if values.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {values.shape}.")
    if pd.isna(values).any():
        raise ValueError("y contains missing values.")
    classes = np.unique(values)
    return values, classes


def _like(y, values: np.ndarray, index=None):
    """``values`` in the container type of ``y`` (a Series keeps name and dtype)."""
    if isinstance(y, pd.Series):
        index = y.index if index is None else index
        return pd.Series(values, name=y.name, index=index).astype(y.dtype)
    return values


def flip_labels(y, rate, *, kind="uniform", random_state=None):
    """Flip the labels of exactly ``round(rate * n)`` rows.

    Parameters
    ----------
    y : array-like or pandas.Series of shape (n_samples,)
        Class labels (two classes or more).
    rate : float in [0, 1]
        Share of rows to flip; ``round(rate * n)`` rows are flipped (halves
        round up), each to a label different from its own.
    kind : {"uniform", "class"}, default="uniform"
        How rows and new labels are chosen:

        - ``"uniform"``: rows drawn uniformly without replacement, each given
          a label drawn uniformly from the *other* classes (symmetric noise).
        - ``"class"``: class-dependent (asymmetric, "pair") noise. Every class
          has one fixed target, the next class in sorted order (the last
          class goes to the first), and the flipped rows are drawn from the
          most frequent class first, then, when it has too few rows, from the
          next most frequent one, and so on. With two classes the noise is
          one-sided: e.g. only negatives are turned into positives. Unlike
          uniform noise it shifts the class-conditional distributions
          consistently, which is harder to detect.

    random_state : int, RandomState instance or None, default=None
        Seed of the draws.

    Returns
    -------
    y_noisy : ndarray or pandas.Series of shape (n_samples,)
        The labels after flipping, in the type of ``y`` (a Series keeps its
        index and name).
    mask : ndarray of bool, shape (n_samples,)
        True for the flipped rows.

    See Also
    --------
    inject_anomalies : add out-of-distribution rows.
    skinfluence.metrics.detection_roc_auc : score a detector against ``mask``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.datasets import flip_labels
    >>> y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    >>> y_noisy, mask = flip_labels(y, 0.3, random_state=0)
    >>> int(mask.sum()), bool(np.all(y_noisy[mask] != y[mask]))
    (3, True)
    >>> y_noisy, mask = flip_labels(y, 0.3, kind="class", random_state=0)
    >>> y[mask].tolist(), y_noisy[mask].tolist()
    ([0, 0, 0], [1, 1, 1])
    """
    rate = _check_rate(rate)
    if kind not in FLIP_KINDS:
        raise ValueError(f"kind must be one of {FLIP_KINDS}, got {kind!r}.")
    values, classes = _labels(y)
    if len(classes) < 2:
        raise ValueError("flip_labels needs at least two classes in y.")
    rng = check_random_state(random_state)
    n = len(values)
    n_flip = _round_half_up(rate * n)
    codes = np.searchsorted(classes, values)
    new_codes = codes.copy()
    if kind == "uniform":
        rows = rng.choice(n, size=n_flip, replace=False)
        # a uniform draw among the K - 1 other classes: shift by 1..K-1
        shift = rng.randint(1, len(classes), size=n_flip)
        new_codes[rows] = (codes[rows] + shift) % len(classes)
    else:
        counts = np.bincount(codes, minlength=len(classes))
        order = np.argsort(-counts, kind="stable")  # most frequent first
        rows_list, left = [], n_flip
        for c in order:
            if left == 0:
                break
            members = np.flatnonzero(codes == c)
            take = min(left, len(members))
            rows_list.append(rng.choice(members, size=take, replace=False))
            left -= take
        rows = np.concatenate(rows_list) if rows_list else np.zeros(0, dtype=int)
        new_codes[rows] = (codes[rows] + 1) % len(classes)
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return _like(y, classes[new_codes]), mask


def _is_categorical(col: pd.Series) -> bool:
    return not is_numeric_dtype(col.dtype) or is_bool_dtype(col.dtype)


def _far_values(col: np.ndarray, k: int, rng, distance, dtype) -> np.ndarray:
    """Values outside ``[min(col), max(col)]``, either side at random."""
    lo, hi = float(np.min(col)), float(np.max(col))
    width = hi - lo if hi > lo else 1.0
    gap = rng.uniform(distance[0], distance[1], size=k) * width
    above = rng.randint(0, 2, size=k).astype(bool)
    if np.issubdtype(dtype, np.unsignedinteger):
        above[:] = True  # no room below zero
    out = np.where(above, hi + gap, lo - gap)
    if np.issubdtype(dtype, np.integer):
        # round away from the range, so that a value never falls back into it
        out = np.where(
            above, np.maximum(np.ceil(out), hi + 1), np.minimum(np.floor(out), lo - 1)
        )
    return out


ANOMALY_KINDS = ("far", "clustered")
_DEFAULT_DISTANCE = {"far": (0.5, 1.5), "clustered": (1.0, 2.0)}
#: standard deviation of the members of a cluster, in column standard deviations
_CLUSTER_SPREAD = 0.05


def inject_anomalies(
    X,
    y,
    rate,
    *,
    kind="far",
    distance=None,
    n_clusters=3,
    label="row",
    random_state=None,
):
    """Add out-of-distribution rows, each with one random label.

    ``k = round(rate * n / (1 - rate))`` rows are added, so that they make up
    the share ``rate`` of the returned data, and inserted at random positions
    (a training loop that does not shuffle still meets them throughout). The
    label of each anomaly is drawn uniformly from the classes of ``y``.

    ``kind="far"`` (global anomalies): every value is drawn independently,
    per column:

    - numeric column with observed range ``[lo, hi]`` (width ``w``, 1 when
      the column is constant): a value *outside* the range, ``hi + u w`` or
      ``lo - u w`` (either side with probability 1/2), ``u ~ U(distance)``,
      by default 0.5 to 1.5 range widths away; integer columns are rounded
      away from the range and keep their dtype;
    - categorical, object or boolean column (DataFrames only): a value drawn
      uniformly from the column's observed values (categories unseen in
      ``X`` would break a fitted encoder).

    ``kind="clustered"`` (near-clustered anomalies): ``n_clusters`` tight
    clusters next to the data. Each cluster has a centre: a random row of
    ``X`` whose numeric values are all shifted, each by ``+- u`` column
    standard deviations (random sign, ``u ~ U(distance)``, by default 1 to
    2), and whose categories are kept. Its members (the anomalies are shared
    evenly at random between clusters) are the centre plus Gaussian noise of
    0.05 column standard deviations (integer columns rounded), with the
    centre's categories. Random labels in a tight cluster cannot be fitted,
    and the rows sit close to real ones: a harder, more realistic case than
    ``"far"``, whose huge inputs give huge gradients.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or pandas.DataFrame
        Numeric arrays, or DataFrames with numeric and categorical columns
        (at least one numeric). Missing values are not allowed.
    y : array-like or pandas.Series of shape (n_samples,)
        Class labels.
    rate : float in [0, 1)
        Share of anomalies in the returned data.
    kind : {"far", "clustered"}, default="far"
        How the anomalies are drawn (see above).
    distance : (float, float), default=None
        Range of ``u``: in range widths for "far" (default ``(0.5, 1.5)``),
        in standard deviations for "clustered" (default ``(1.0, 2.0)``).
    n_clusters : int, default=3
        Number of clusters of ``kind="clustered"``.
    label : {"row", "cluster"}, default="row"
        ``"row"``: each anomaly gets its own random label. ``"cluster"``
        (``kind="clustered"`` only): all members of a cluster share one random
        label, so the model can fit them: a batch of corrupted, near-duplicate
        records that agree with each other. Their loss and gradients then
        fade, which hides them from loss-based signals.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.

    Returns
    -------
    X_new : ndarray or DataFrame of shape (n_samples + k, n_features)
        The rows of ``X`` (in their order) with the anomalies inserted; a
        DataFrame gets a fresh ``RangeIndex`` and keeps its dtypes.
    y_new : ndarray or Series of shape (n_samples + k,)
    mask : ndarray of bool, shape (n_samples + k,)
        True for the injected rows.

    See Also
    --------
    flip_labels : label noise.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.datasets import inject_anomalies
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.uniform(0, 1, size=(90, 2)), rng.integers(0, 2, size=90)
    >>> X_new, y_new, mask = inject_anomalies(X, y, 0.1, random_state=0)
    >>> X_new.shape, int(mask.sum())
    ((100, 2), 10)
    >>> bool(np.all((X_new[mask] < -0.4) | (X_new[mask] > 1.4)))
    True
    >>> X_new, y_new, mask = inject_anomalies(
    ...     X, y, 0.1, kind="clustered", n_clusters=2, random_state=0)
    >>> len(np.unique(X_new[mask].round(1), axis=0)) <= 4
    True
    """
    rate = _check_rate(rate, upper_open=True)
    if kind not in ANOMALY_KINDS:
        raise ValueError(f"kind must be one of {ANOMALY_KINDS}, got {kind!r}.")
    distance = _DEFAULT_DISTANCE[kind] if distance is None else distance
    lo_d, hi_d = (float(d) for d in distance)
    if not (0 <= lo_d <= hi_d):
        raise ValueError(
            f"distance must be (low, high) with 0 <= low <= high, got {distance!r}."
        )
    if not (isinstance(n_clusters, int | np.integer) and n_clusters >= 1):
        raise ValueError(f"n_clusters must be an int >= 1, got {n_clusters!r}.")
    if label not in ("row", "cluster"):
        raise ValueError(f"label must be 'row' or 'cluster', got {label!r}.")
    if label == "cluster" and kind != "clustered":
        raise ValueError("label='cluster' needs kind='clustered'.")
    rng = check_random_state(random_state)
    values, classes = _labels(y)
    n = len(values)
    frame = isinstance(X, pd.DataFrame)
    if not frame:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {arr.shape}.")
        if not (
            np.issubdtype(arr.dtype, np.number)
            and not np.issubdtype(arr.dtype, np.bool_)
        ):
            raise TypeError(
                "inject_anomalies needs a numeric array; pass a pandas DataFrame "
                "for data with categorical columns."
            )
    if (X.shape[0] if hasattr(X, "shape") else len(X)) != n:
        raise ValueError("X and y have different lengths.")
    if n == 0:
        raise ValueError("X is empty.")
    if frame:
        if X.isna().any().any():
            raise ValueError("X contains missing values.")
        if all(_is_categorical(X[c]) for c in X.columns):
            raise ValueError("X needs at least one numeric column.")
    k = _round_half_up(rate * n / (1.0 - rate))
    total = n + k
    pos = np.sort(rng.choice(total, size=k, replace=False))
    mask = np.zeros(total, dtype=bool)
    mask[pos] = True
    labels = np.empty(total, dtype=values.dtype)
    labels[~mask] = values
    labels[mask] = classes[rng.randint(0, len(classes), size=k)]
    # clustered: the anomalies' clusters and the clusters' centre rows
    assign = rng.permutation(np.arange(k) % n_clusters)
    centres = rng.choice(n, size=n_clusters)
    if label == "cluster":
        labels[mask] = classes[rng.randint(0, len(classes), size=n_clusters)][assign]

    def numeric(col: np.ndarray, dtype) -> np.ndarray:
        if kind == "far":
            return _far_values(col, k, rng, (lo_d, hi_d), dtype)
        sd = float(np.std(col)) or 1.0
        sign = np.where(rng.randint(0, 2, size=n_clusters) == 1, 1.0, -1.0)
        centre = col[centres] + sign * rng.uniform(lo_d, hi_d, size=n_clusters) * sd
        out = centre[assign] + rng.normal(0.0, _CLUSTER_SPREAD * sd, size=k)
        if np.issubdtype(dtype, np.integer):
            out = np.round(out)
            if np.issubdtype(dtype, np.unsignedinteger):
                out = np.maximum(out, 0)
        return out

    def categorical(col: np.ndarray) -> np.ndarray:
        if kind == "far":
            observed = pd.unique(col)
            return observed[rng.randint(0, len(observed), size=k)]
        return col[centres][assign]

    if frame:
        new = {}
        for name in X.columns:
            col = X[name]
            if _is_categorical(col):
                out = np.empty(total, dtype=object)
                out[~mask] = col.to_numpy(dtype=object)
                out[mask] = categorical(col.to_numpy(dtype=object))
            else:
                dtype = np.dtype(getattr(col.dtype, "numpy_dtype", col.dtype))
                out = np.empty(total, dtype=float)
                out[~mask] = col.to_numpy(dtype=float)
                out[mask] = numeric(out[~mask], dtype)
            new[name] = pd.Series(out).astype(col.dtype)
        X_new = pd.DataFrame(new, columns=X.columns)
    else:
        X_new = np.empty((total, arr.shape[1]), dtype=float)
        X_new[~mask] = arr
        for j in range(arr.shape[1]):
            X_new[mask, j] = numeric(arr[:, j].astype(float), arr.dtype)
        X_new = X_new.astype(arr.dtype, copy=False)
    if isinstance(y, pd.Series):
        y_new = pd.Series(labels, name=y.name).astype(y.dtype)
    else:
        y_new = labels
    return X_new, y_new, mask
