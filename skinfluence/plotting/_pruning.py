"""plot_pruning_curve: metrics against the pruning ratio."""

from __future__ import annotations

import numbers
import re
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from ._common import _RATIO, _new_axes


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
    from ..metrics import FAIRNESS_METRICS

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
