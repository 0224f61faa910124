"""Plots: the distribution of influence scores, the pruning curve, the fairness front.

matplotlib is an optional dependency (the ``plot`` extra); it is imported
inside the functions, so ``import skinfluence.plotting`` never needs it.
"""

from __future__ import annotations

import numbers
import re
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["plot_fairness_front", "plot_influence", "plot_pruning_curve"]

_RATIO = "prune_ratio"


def _pyplot(caller: str):
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} needs matplotlib, the optional 'plot' extra: "
            "pip install 'skinfluence[plot]'."
        ) from exc
    return plt


def _new_axes(ax, caller: str):
    """``ax``, or the Axes of a new figure (matplotlib imported only here)."""
    if ax is not None:
        return ax
    return _pyplot(caller).subplots()[1]


# ------------------------------------------------------------- plot_influence
def _as_mask(removed, n: int) -> np.ndarray:
    """A boolean mask of length ``n`` from a mask or from row indices."""
    arr = np.asarray(removed)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(
                f"removed is a boolean mask of shape {arr.shape}; expected ({n},), "
                "one value per score."
            )
        return arr
    arr = arr.reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            "removed must be a boolean mask or integer row indices, got dtype "
            f"{arr.dtype}."
        )
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise ValueError(f"removed holds row indices outside [0, {n}).")
    mask = np.zeros(n, dtype=bool)
    mask[arr.astype(np.intp)] = True
    return mask


_BENEFICIAL = "higher = more beneficial"
_INFLUENCE_LABEL = f"influence score ({_BENEFICIAL})"


def _is_fitted_cleaner(obj) -> bool:
    """Whether ``obj`` is an estimator (a filter or sampler), not scores."""
    return hasattr(obj, "fit") and hasattr(obj, "get_params")


def _score_label(scores) -> str:
    """What the plotted values are, read from what was passed as ``scores``.

    A fitted filter or sampler says it through ``method_`` (a signal method
    scores minus its signal) and ``action``; a pandas column through its name
    (a column of :func:`~skinfluence.compute_signals` is a signal, larger =
    more suspicious). Anything else is taken for influence scores.
    """
    from .signals import SIGNAL_METHODS, SignalMethod

    if _is_fitted_cleaner(scores):
        method = scores.method_
        key = method._name()
        if scores.get_params().get("action") == "relabel":
            return (
                f"effect of the best label change, method={key!r} "
                "(negative = the change helps)"
            )
        if isinstance(method, SignalMethod):
            return f"minus the {method.signal!r} signal, method={key!r} ({_BENEFICIAL})"
        return f"influence score, method={key!r} ({_BENEFICIAL})"
    name = getattr(scores, "name", None)
    if isinstance(scores, pd.DataFrame):
        (name,) = scores.columns
    if not isinstance(name, str):
        return _INFLUENCE_LABEL
    if name in SIGNAL_METHODS:
        return f"{name!r} signal (larger = more suspicious)"
    return name


def _influence_inputs(scores, removed):
    """Scores (float array) and removed rows from an array or a fitted estimator."""
    if _is_fitted_cleaner(scores):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(scores, "influence_")
        if removed is None:
            removed = scores.removed_indices_
        scores = scores.influence_
    if isinstance(scores, pd.DataFrame):
        if scores.shape[1] != 1:
            raise ValueError(
                f"scores is a DataFrame with {scores.shape[1]} columns "
                f"{list(scores.columns)[:10]}; pass one of them, e.g. "
                f"scores[{scores.columns[0]!r}]."
            )
        scores = scores.iloc[:, 0]
    values = np.asarray(scores, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {values.shape}.")
    if np.isinf(values).any():
        raise ValueError("scores contain infinite values.")
    mask = None if removed is None else _as_mask(removed, len(values))
    return values, mask


def _group_labels(groups, n: int, group_names):
    values = groups.to_numpy() if isinstance(groups, pd.Series) else np.asarray(groups)
    values = values.reshape(-1) if values.ndim == 2 and values.shape[1] == 1 else values
    if values.shape != (n,):
        raise ValueError(
            f"groups has shape {values.shape}; expected ({n},), one label per score."
        )
    if pd.isna(values).any():
        raise ValueError("groups contains missing values.")
    levels = pd.unique(values)
    try:
        levels = np.sort(levels)
    except TypeError:  # mixed types: keep the order of first appearance
        pass
    names = dict(group_names or {})
    return values, [(level, str(names.get(level, level))) for level in levels]


def plot_influence(
    scores,
    *,
    removed=None,
    groups=None,
    group_names=None,
    ax=None,
    bins=50,
    range=None,  # noqa: A002 - the name numpy and matplotlib use
    log=False,
    label=None,
):
    """Histogram of influence scores, with the removed rows marked.

    Parameters
    ----------
    scores : array-like of shape (n_samples,), Series, or fitted InfluenceFilter
        One score per row, e.g. the output of
        :func:`~skinfluence.compute_influence` (higher is more beneficial) or
        a column of :func:`~skinfluence.compute_signals` (larger is more
        suspicious; a one-column DataFrame is that column). A fitted
        :class:`~skinfluence.InfluenceFilter` or
        :class:`~skinfluence.InfluenceSampler` stands for its ``influence_``,
        with its ``removed_indices_`` as ``removed``. Rows whose score is NaN
        (the validation rows of a filter) are left out.
    removed : array-like of bool of shape (n_samples,) or of int, default=None
        The removed rows, as a mask or as row indices. They are outlined
        (hatched, red) on top of the bars; when they are exactly the lowest
        scores (or the highest, as the most suspicious rows of a signal) a
        dashed line marks the threshold.
    groups : array-like of shape (n_samples,), default=None
        A label per row (a sensitive feature, or a boolean mask of rows known
        to be mislabeled): one stacked bar colour per label, in sorted order.
    group_names : dict, default=None
        Legend names of the labels of ``groups`` (e.g. ``{True: "flipped",
        False: "clean"}``); labels not in it are shown as they are.
    ax : matplotlib Axes, default=None
        The Axes to draw on; a new figure is created when None.
    bins : int or sequence of float, default=50
        Number of bins or their edges, as in ``numpy.histogram``; the same
        edges are used for every group and for the removed rows.
    range : (float, float), default=None
        Lower and upper edges of the bins; scores outside it are not drawn.
        None spans all the scores.
    log : bool, default=False
        Logarithmic count axis (influence scores are often heavy-tailed).
    label : str, default=None
        The label of the score axis. None says what ``scores`` holds: for a
        fitted filter or sampler, its method's scores ("minus the 'loss'
        signal" for a signal method, which scores ``-signal``: higher is
        still more beneficial); for a column of
        :func:`~skinfluence.compute_signals`, named like a signal, that
        signal (larger = more suspicious); for another named column, its
        name; otherwise "influence score (higher = more beneficial)".

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on. Its bar containers (``ax.containers``) hold one
        bar per bin and group, of height the number of rows.

    See Also
    --------
    plot_pruning_curve : test metrics against ``prune_ratio``.

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from skinfluence.plotting import plot_influence
    >>> scores = np.random.RandomState(0).normal(size=1000)
    >>> ax = plot_influence(scores, removed=scores < -2, bins=20, ax=Figure().add_subplot())
    >>> counts, edges = np.histogram(scores, bins=20)
    >>> [bar.get_height() for bar in ax.containers[0]] == counts.tolist()
    True
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['scored rows (1000)', 'removed (24)']
    >>> ax.get_xlabel()
    'influence score (higher = more beneficial)'

    A signal column of :func:`~skinfluence.compute_signals` is labelled as
    one, larger = more suspicious:

    >>> import pandas as pd
    >>> aum = pd.Series(scores, name="aum")
    >>> plot_influence(aum, ax=Figure().add_subplot()).get_xlabel()
    "'aum' signal (larger = more suspicious)"
    """
    values, removed_mask = _influence_inputs(scores, removed)
    if label is None:
        label = _score_label(scores)
    keep = ~np.isnan(values)
    if not keep.any():
        raise ValueError("No finite score to plot.")
    labels = None
    if groups is not None:
        labels, levels = _group_labels(groups, len(values), group_names)
        labels = labels[keep]
    values = values[keep]
    if removed_mask is not None:
        removed_mask = removed_mask[keep]
    edges = np.histogram_bin_edges(values, bins=bins, range=range)
    widths = np.diff(edges)

    ax = _new_axes(ax, "plot_influence")
    handles = []
    if labels is None:
        counts, _ = np.histogram(values, bins=edges)
        bars = ax.bar(
            edges[:-1],
            counts,
            width=widths,
            align="edge",
            color="0.65",
            label=f"scored rows ({len(values)})",
        )
        handles.append(bars)
    else:
        bottom = np.zeros(len(edges) - 1)
        for i, (level, name) in enumerate(levels):
            sel = labels == level
            counts, _ = np.histogram(values[sel], bins=edges)
            bars = ax.bar(
                edges[:-1],
                counts,
                width=widths,
                align="edge",
                bottom=bottom,
                color=f"C{i % 10}",
                alpha=0.8,
                label=f"{name} ({int(sel.sum())})",
            )
            handles.append(bars)
            bottom = bottom + counts

    if removed_mask is not None and removed_mask.any():
        counts, _ = np.histogram(values[removed_mask], bins=edges)
        stairs = ax.stairs(
            counts,
            edges,
            fill=False,
            hatch="////",
            edgecolor="C3",
            linewidth=1.2,
            label=f"removed ({int(removed_mask.sum())})",
        )
        handles.append(stairs)
        cut = _threshold(values, removed_mask)
        if cut is not None:
            ax.axvline(cut, color="C3", linestyle="--", linewidth=1)

    if log:
        ax.set_yscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("rows")
    ax.legend(handles=handles, frameon=False)
    return ax


def _threshold(values: np.ndarray, removed: np.ndarray):
    """The cut when the removed rows are exactly the lowest or the highest."""
    if not (~removed).any():
        return None
    gone, kept = values[removed], values[~removed]
    if gone.max() <= kept.min():
        return gone.max()
    if gone.min() >= kept.max():
        return gone.min()
    return None


# --------------------------------------------------------- plot_pruning_curve
def _table(results):
    """Columns of the results as a dict of 1-D arrays, and its kind."""
    if hasattr(results, "cv_results_"):
        results = results.cv_results_
    if isinstance(results, pd.DataFrame):
        table = {str(c): results[c].to_numpy() for c in results.columns}
    elif isinstance(results, dict):
        table = {str(k): v for k, v in results.items()}
    else:
        raise TypeError(
            "results must be a fitted search (GridSearchCV), its cv_results_ "
            f"dict or a DataFrame, got {type(results).__name__}."
        )
    kind = "cv" if any(k.startswith("mean_test_") for k in table) else "runs"
    return table, kind


def _find_column(table, name: str, kind: str, what: str) -> str:
    """The column of a parameter: exact, ``param_<name>`` or ``param_*__<name>``."""
    if name in table:
        return name
    prefix = "param_" if kind == "cv" else ""
    hits = [
        k
        for k in table
        if k == prefix + name or (k.startswith(prefix) and k.endswith("__" + name))
    ]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise ValueError(
            f"No column for {what} {name!r} in the results; columns: "
            f"{sorted(table)[:20]}."
        )
    raise ValueError(
        f"Several columns match {what} {name!r}: {hits}; pass one of them."
    )


def _numeric(values) -> np.ndarray:
    """Floats; NaN where a value is masked or not a real number."""
    mask = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else None
    out = np.full(len(values), np.nan)
    for i, v in enumerate(np.asarray(values, dtype=object)):
        if (mask is None or not mask[i]) and isinstance(v, numbers.Real):
            if not isinstance(v, bool):
                out[i] = float(v)
    return out


def _cv_summary(table, ratio_col, metrics, by_col):
    available = [k[len("mean_test_") :] for k in table if k.startswith("mean_test_")]
    if metrics is None:
        metrics = available
    for m in metrics:
        if m not in available:
            raise ValueError(f"No metric {m!r} in cv_results_; there are {available}.")
    ratio = _numeric(table[ratio_col])
    rows = np.flatnonzero(~np.isnan(ratio))
    _warn_dropped(len(ratio) - len(rows), ratio_col, "candidate(s)")
    keys = [None] * len(ratio) if by_col is None else list(table[by_col])
    series = {}
    for i in rows:
        series.setdefault(_hashable(keys[i]), []).append(i)
    out = []
    for key, idx in series.items():
        idx = np.asarray(idx)[np.argsort(ratio[idx], kind="stable")]
        r = ratio[idx]
        if len(np.unique(r)) < len(r):
            raise ValueError(
                f"Several candidates share a value of {ratio_col}: other "
                "parameters vary in the search. Pass by=<that parameter> or "
                "select the rows to plot."
            )
        stats = {
            m: (
                np.asarray(table[f"mean_test_{m}"], dtype=float)[idx],
                np.asarray(table[f"std_test_{m}"], dtype=float)[idx],
            )
            for m in metrics
        }
        out.append((key, r, stats))
    return out, list(metrics)


def _warn_dropped(n: int, column: str, what: str) -> None:
    if n:
        warnings.warn(
            f"{n} {what} without a numeric {column} (e.g. 'negative', or a "
            "baseline without pruning) are not plotted.",
            UserWarning,
            stacklevel=4,
        )


def _hashable(v):
    try:
        hash(v)
    except TypeError:
        return repr(v)
    return v


def _runs_summary(table, ratio_col, metrics, by_col):
    frame = pd.DataFrame(table)
    skip = {ratio_col, by_col, "seed", "random_state", "fold", "split"}
    if metrics is None:
        metrics = [
            c
            for c in frame.columns
            if c not in skip
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]
    for m in metrics:
        if m not in frame.columns:
            raise ValueError(f"No metric column {m!r}; columns: {list(frame.columns)}.")
    frame = frame.assign(_ratio=_numeric(frame[ratio_col].to_numpy()))
    _warn_dropped(int(frame["_ratio"].isna().sum()), ratio_col, "row(s)")
    frame = frame[~frame["_ratio"].isna()]
    keys = [by_col] if by_col is not None else []
    out = []
    groups = frame.groupby(keys, sort=False) if keys else [((None,), frame)]
    for key, part in groups:
        agg = part.groupby("_ratio", sort=True)[list(metrics)].agg(
            [("mean", "mean"), ("std", lambda s: float(np.std(s.to_numpy(float))))]
        )
        stats = {
            m: (agg[(m, "mean")].to_numpy(float), agg[(m, "std")].to_numpy(float))
            for m in metrics
        }
        out.append((key[0], agg.index.to_numpy(float), stats))
    return out, list(metrics)


class _View(NamedTuple):
    """How one metric is drawn: its name, the sign of its values, what it is."""

    name: str
    sign: float
    kind: str  # "score" (higher = better), "gap" or "loss" (lower = better)


#: words that make a metric's name a gap between groups
_GAP_WORDS = ("gap", "fair", "parity", "odds", "opportunity", "difference", "disparity")


def _names_a_gap(name: str) -> bool:
    """Whether a metric's name says it is a gap (a fairness metric).

    A gap word, or a token that is the initials of a fairness metric of
    :data:`skinfluence.metrics.FAIRNESS_METRICS` ("dp", "eo").
    """
    from .metrics import FAIRNESS_METRICS

    initials = {"".join(w[0] for w in m.split("_")) for m in FAIRNESS_METRICS}
    low = name.lower()
    return any(w in low for w in _GAP_WORDS) or bool(
        initials.intersection(re.split(r"[^a-z0-9]+", low))
    )


def _view(metric: str, means: np.ndarray) -> _View:
    """How ``metric``, of mean values ``means`` (all curves), is shown.

    scikit-learn's ``neg_<name>`` (a loss or gap made a score) is shown as
    ``<name>``, negated back; so is a metric whose name says it is a gap and
    whose values are all at most 0 (a fairness scorer made with
    ``greater_is_better=False``, whatever its name), and any other metric
    with only negative values (shown as ``-<name>``). A gap's name says
    "gap".
    """
    base = metric[len("neg_") :] if metric.startswith("neg_") else metric
    finite = means[np.isfinite(means)]
    all_negative = finite.size > 0 and finite.max() <= 0 and finite.min() < 0
    negated = metric.startswith("neg_") or all_negative
    sign = -1.0 if negated else 1.0
    if _names_a_gap(base):
        return _View(base if "gap" in base.lower() else f"{base} gap", sign, "gap")
    if metric.startswith("neg_"):
        return _View(base, sign, "loss")
    if negated:
        return _View(f"-{metric}", sign, "loss")
    return _View(metric, sign, "score")


def _axis_label(views: list[_View]) -> str:
    if len(views) == 1:
        return f"{views[0].name} (test)"
    kinds = {v.kind for v in views}
    if kinds == {"gap"}:
        return "gap (test)"
    return "test score" if kinds == {"score"} else "test value"


def _twin_below(ax):
    """A twin Axes sharing ``ax``'s x-axis, drawn below ``ax`` (and its legend)."""
    twin = ax.twinx()
    ax.set_zorder(twin.get_zorder() + 1)
    twin.patch.set_visible(ax.patch.get_visible())
    twin.patch.set_facecolor(ax.patch.get_facecolor())
    ax.patch.set_visible(False)
    return twin


def plot_pruning_curve(
    results,
    *,
    x=_RATIO,
    metrics=None,
    by=None,
    ratio=_RATIO,
    annotate=True,
    twin=True,
    ax=None,
):
    """Test metrics against ``prune_ratio``, or one metric against another.

    Parameters
    ----------
    results : GridSearchCV, dict or DataFrame
        A fitted search over ``prune_ratio`` (its ``cv_results_`` are read),
        its ``cv_results_`` dict or a DataFrame of it (columns
        ``param_..prune_ratio``, ``mean_test_<metric>`` and
        ``std_test_<metric>``), or a DataFrame with one row per run (a
        benchmark: a ``prune_ratio`` column and one column per metric), whose
        metrics are averaged over the runs of each ``prune_ratio``. Select
        the rows of one setting (data set, model, objective) first: every
        row with the same ``prune_ratio`` (and ``by`` value) is averaged.
    x : str, default="prune_ratio"
        The horizontal axis: ``"prune_ratio"`` (the parameter, found as
        ``param_prune_ratio`` or ``param_<step>__prune_ratio``), or the name of
        a metric to draw the others against it (an accuracy-fairness front:
        one point per ``prune_ratio``, labelled with it, joined in the order
        of ``prune_ratio``).
    metrics : sequence of str, default=None
        The metrics on the vertical axis: names of ``mean_test_<metric>``
        (for a search) or metric columns (for runs). None takes all of them.
        A metric named ``neg_<name>`` (scikit-learn's convention for a loss or
        gap turned into a score) is shown as ``<name>``, negated back. A gap
        is shown positive and named as a gap whatever the scorer's name: a
        metric named like one ("dp_gap", "..._difference", "fairness", the
        initials of a fairness metric such as "dp") whose values are all at
        most 0 is a negated gap (``make_scorer(..., greater_is_better=False)``)
        and is negated back; any other metric whose values are all negative
        is shown negated, as ``-<name>``.
    by : str, default=None
        A parameter (or column) whose values get one curve each, e.g.
        ``"method"``. Every curve must have one point per ``prune_ratio``.
    ratio : str, default="prune_ratio"
        The name of the prune-ratio parameter (``param_<ratio>`` or
        ``param_<step>__<ratio>`` in ``cv_results_``) or column (in a table of
        runs). Candidates or rows without a numeric value are left out, with
        a warning.
    annotate : bool, default=True
        With ``x`` a metric, label each point with its ``prune_ratio``
        (points too close to one already labelled are left unlabelled).
    twin : bool, default=True
        With ``x="prune_ratio"``, when the metrics mix scores (higher is
        better, e.g. accuracy near 0.85) with gaps or losses (lower is
        better, e.g. a gap near 0.17), draw the gaps and losses on a second
        y-axis (``ax.twinx()``, dashed lines and square markers, labelled on
        the right), so that each keeps its own scale. False draws every
        metric on ``ax``.
    ax : matplotlib Axes, default=None
        The Axes to draw on; a new figure is created when None.

    Returns
    -------
    ax : matplotlib Axes
        One line per metric (and value of ``by``), with error bars of one
        standard deviation (over the splits of a search, or over runs with
        ``ddof=0``, as ``cv_results_`` computes it). With a twin, ``ax``
        holds the scores and the legend of every line, and the twin (the
        other Axes of ``ax.figure`` at ``ax``'s position) the gaps and
        losses.

    See Also
    --------
    plot_influence : the distribution of the scores.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from skinfluence.plotting import plot_pruning_curve
    >>> cv_results = {
    ...     "param_influencefilter__prune_ratio": [0.0, 0.05, 0.1],
    ...     "mean_test_accuracy": [0.85, 0.84, 0.83],
    ...     "std_test_accuracy": [0.01, 0.01, 0.02],
    ... }
    >>> ax = plot_pruning_curve(cv_results, ax=Figure().add_subplot())
    >>> ax.lines[0].get_xydata().tolist()
    [[0.0, 0.85], [0.05, 0.84], [0.1, 0.83]]

    A negated gap next to accuracy goes to a second y-axis, shown positive:

    >>> cv_results["mean_test_neg_dp_gap"] = [-0.17, -0.14, -0.12]
    >>> cv_results["std_test_neg_dp_gap"] = [0.01, 0.01, 0.01]
    >>> ax = plot_pruning_curve(cv_results, ax=Figure().add_subplot())
    >>> gap_axes = [a for a in ax.figure.axes if a is not ax]
    >>> ax.get_ylabel(), gap_axes[0].get_ylabel()
    ('accuracy (test)', 'dp_gap (test)')
    >>> gap_axes[0].lines[0].get_ydata().tolist()
    [0.17, 0.14, 0.12]
    """
    table, kind = _table(results)
    ratio_col = _find_column(table, ratio, kind, "the prune ratio")
    by_col = None if by is None else _find_column(table, by, kind, "by")
    x_is_ratio = x in (_RATIO, ratio, ratio_col)
    if metrics is not None:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        if not x_is_ratio and x not in metrics:
            metrics = [x, *metrics]
    elif not x_is_ratio:
        metrics = None  # all, x included
    summarise = _cv_summary if kind == "cv" else _runs_summary
    series, metrics = summarise(table, ratio_col, metrics, by_col)
    if not x_is_ratio and x not in metrics:
        raise ValueError(
            f"x={x!r} is neither {_RATIO!r} nor one of the metrics {metrics}."
        )
    shown = [m for m in metrics if m != x]
    if not shown:
        raise ValueError("No metric to plot against x.")

    views = {
        m: _view(m, np.concatenate([stats[m][0] for _, _, stats in series]))
        for m in metrics
    }
    ax = _new_axes(ax, "plot_pruning_curve")
    on_twin = set()
    if twin and x_is_ratio and len({views[m].kind == "score" for m in shown}) == 2:
        on_twin = {m for m in shown if views[m].kind != "score"}
    twin_ax = _twin_below(ax) if on_twin else None
    handles = []
    points = []  # (x, y, prune_ratio) of the front, labelled after drawing
    for key, ratio, stats in series:
        for m in shown:
            view = views[m]
            mean = view.sign * stats[m][0]
            if by_col is None:
                label = view.name
            else:
                label = f"{by}={key}" if len(shown) == 1 else f"{view.name}, {by}={key}"
            style = dict(capsize=3, label=label, color=f"C{len(handles) % 10}")
            if m in on_twin:
                handles.append(
                    twin_ax.errorbar(
                        ratio, mean, yerr=stats[m][1], marker="s", ls="--", **style
                    )
                )
                continue
            if x_is_ratio:
                handles.append(
                    ax.errorbar(ratio, mean, yerr=stats[m][1], marker="o", **style)
                )
                continue
            x_mean = views[x].sign * stats[x][0]
            handles.append(
                ax.errorbar(
                    x_mean,
                    mean,
                    xerr=stats[x][1],
                    yerr=stats[m][1],
                    marker="o",
                    **style,
                )
            )
            points.extend(zip(x_mean, mean, ratio, strict=True))
    if annotate and points:
        _annotate(ax, points)
    ax.set_xlabel(_RATIO if x_is_ratio else f"{views[x].name} (test)")
    ax.set_ylabel(_axis_label([views[m] for m in shown if m not in on_twin]))
    if twin_ax is not None:
        twin_ax.set_ylabel(_axis_label([views[m] for m in shown if m in on_twin]))
    if len(handles) > 1:
        ax.legend(handles=handles, frameon=False)
    return ax


def _annotate(ax, points, min_gap=(0.1, 0.06)):
    """Label the points of a front with their prune_ratio, skipping crowded ones.

    A label is left out when its point lies closer to a point already labelled
    than ``min_gap`` (shares of the data span along x and along y).
    """
    xy = np.array([(px, py) for px, py, _ in points], dtype=float)
    span = np.ptp(xy, axis=0)
    span[span == 0] = 1.0
    placed = []
    for (px, py, r), p in zip(points, xy, strict=True):
        if any(np.all(np.abs(p - q) / span < np.asarray(min_gap)) for q in placed):
            continue
        placed.append(p)
        ax.annotate(
            f"{r:g}",
            (px, py),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize="small",
        )


# --------------------------------------------------------- plot_fairness_front
#: how each method of a fairness front is named in the legend
_FRONT_NAMES = {
    "influence": "InfluenceFilter (bound)",
    "kamiran_calders": "Kamiran-Calders reweighing",
    "exponentiated_gradient": "ExponentiatedGradient (fairlearn)",
}


def plot_fairness_front(front, *, held_out=None, annotate=True, ax=None):
    """Draw an accuracy-fairness front: accuracy against the gap, per method.

    Parameters
    ----------
    front : pandas.DataFrame
        As :func:`skinfluence.fairness_front` returns it (with
        ``baselines=True`` the baselines are drawn too: Kamiran-Calders as
        one point, ExponentiatedGradient as a line over its bounds).
    held_out : bool or None, default=None
        Plot the held-out columns (``test_gap``, ``test_accuracy``) or the
        validation ones (``validation_hard_gap``, ``validation_accuracy``).
        None: held-out when they hold numbers.
    annotate : bool, default=True
        Label each point of a line with its bound.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's Axes by default.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from matplotlib.figure import Figure
    >>> from skinfluence.plotting import plot_fairness_front
    >>> front = pd.DataFrame({"method": ["influence"] * 2, "bound": [0.05, 0.02],
    ...                       "test_gap": [0.06, 0.03], "test_accuracy": [0.82, 0.80]})
    >>> ax = plot_fairness_front(front, ax=Figure().add_subplot())
    >>> ax.lines[0].get_xydata().tolist()
    [[0.03, 0.8], [0.06, 0.82]]
    >>> [text.get_text() for text in ax.texts]
    ['0.02', '0.05']
    """
    table = pd.DataFrame(front)
    if held_out is None:
        held_out = "test_gap" in table and table["test_gap"].notna().any()
    gap, acc = (
        ("test_gap", "test_accuracy")
        if held_out
        else ("validation_hard_gap", "validation_accuracy")
    )
    missing = [c for c in ("method", "bound", gap, acc) if c not in table]
    if missing:
        raise ValueError(f"front has no column {missing}: pass fairness_front's table.")
    ax = _new_axes(ax, "plot_fairness_front")
    for i, (method, part) in enumerate(table.groupby("method", sort=False)):
        part = part.sort_values(gap)
        style = dict(color=f"C{i % 10}", label=_FRONT_NAMES.get(method, method))
        if len(part) == 1:
            ax.plot(part[gap], part[acc], marker="s", ls="none", **style)
        else:
            ax.plot(part[gap], part[acc], marker="o", **style)
        if annotate and len(part) > 1:
            for x, y, b in zip(part[gap], part[acc], part["bound"], strict=True):
                ax.annotate(
                    f"{b:g}", (x, y), textcoords="offset points", xytext=(4, 4),
                    fontsize="small",
                )  # fmt: skip
    where = "held-out" if held_out else "validation"
    ax.set_xlabel(f"fairness gap ({where}, hard predictions)")
    ax.set_ylabel(f"accuracy ({where})")
    ax.legend(frameon=False)
    return ax
