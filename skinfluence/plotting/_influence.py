"""plot_influence: the distribution of the influence scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import _new_axes


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
    from ..signals import SIGNAL_METHODS, SignalMethod

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
