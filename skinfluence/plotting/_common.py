"""What the plots share: matplotlib imported on demand, the ratio column."""

from __future__ import annotations

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


