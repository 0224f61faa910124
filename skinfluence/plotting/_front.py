"""plot_fairness_front: accuracy against the fairness gap, per bound."""

from __future__ import annotations

import pandas as pd

from ._common import _new_axes

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
