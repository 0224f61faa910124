"""The cleaned rows of a dask DataFrame, written to Parquet.

:func:`write_cleaned` selects the rows acted on exactly (``_selection``)
and acts on them with the filter's own rules (``skinfluence._actions``):
its budget, its reweighting ramp; the relabel effects come from
``relabel_effects``, combined as the filter combines them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._actions import n_prune, reweight_strength
from ._selection import _mask, _select


def _check_prune_ratio(prune_ratio) -> None:
    if prune_ratio == "negative":
        return
    if not (
        isinstance(prune_ratio, float | int)
        and not isinstance(prune_ratio, bool)
        and 0 <= prune_ratio < 1
    ):
        raise ValueError(
            f"prune_ratio must be a float in [0, 1) or 'negative', got {prune_ratio!r}."
        )


def _budget(prune_ratio):
    """``k`` from ``(n, rows below 0)``: the filter's budget, or the negative rows."""
    if prune_ratio == "negative":
        return lambda n, negative: negative
    return lambda n, negative: n_prune(prune_ratio, n)


@dataclass
class CleanedRows:
    """What :func:`write_cleaned` wrote.

    Attributes
    ----------
    path : str
        The Parquet dataset.
    n_rows : int
        Rows scored.
    n_acted : int
        Rows removed, relabelled or down-weighted (weight below 1).
    threshold : float
        The k-th smallest score (``-inf`` when no row is acted on).
    """

    path: str
    n_rows: int
    n_acted: int
    threshold: float


def _weights_partition(values, lowest, edge, low, name):
    """``InfluenceFilter``'s weights: ``1 - delta`` on the rows acted on, else 1."""
    a = values.to_numpy(dtype=np.float64)
    w = np.where(lowest.to_numpy(), 1.0 - reweight_strength(a, edge, low), 1.0)
    return values.__class__(w, index=values.index, name=name)


def write_cleaned(
    df,
    scores,
    path,
    *,
    prune_ratio=0.05,
    action="remove",
    label=None,
    new_labels=None,
    weight_column="sample_weight",
    persist=True,
    **to_parquet_kwargs,
) -> CleanedRows:
    """Write the cleaned rows of a dask DataFrame to Parquet.

    The rows acted on are the ``k = floor(prune_ratio * n)`` of lowest score
    (ties by position), found exactly by one selection (:func:`lowest_mask`):
    the rows ``InfluenceFilter`` acts on given the same scores. Each worker
    writes its own partitions (``DataFrame.to_parquet``), in the same
    computation that counts the rows acted on.

    Parameters
    ----------
    df : dask DataFrame
        The training table, with the partitions of ``scores``.
    scores : dask Series
        From :func:`compute_influence` on columns of ``df`` (for "relabel",
        the ``effect`` of :func:`relabel_effects`).
    path : str
        The Parquet dataset to write.
    prune_ratio : float in [0, 1) or "negative", default=0.05
        The share of rows acted on; "negative": every row of negative score.
    action : {"remove", "reweight", "relabel"}, default="remove"
        "remove" writes the other rows. "reweight" writes every row with
        ``weight_column`` (as ``InfluenceFilter(action="reweight")`` weights
        them: 0 at the lowest score, rising linearly to 1 at the
        ``(k + 1)``-th), rows of weight 0 left out. "relabel" writes every
        row, with ``label`` set to ``new_labels`` on the rows acted on whose
        effect is negative.
    label : str, default=None
        The label column, for "relabel".
    new_labels : dask Series, default=None
        The proposed labels (from :func:`relabel_effects`), for "relabel".
    weight_column : str, default="sample_weight"
        For "reweight".
    persist : bool, default=True
        Hold the scores in the cluster's memory (8 bytes a row) while the
        selection reads them; ``False`` recomputes them on each pass (use it
        for scores read back from storage).
    **to_parquet_kwargs
        Passed to ``DataFrame.to_parquet``.

    Returns
    -------
    CleanedRows
    """
    import dask

    if action not in ("remove", "reweight", "relabel"):
        raise ValueError(f"action must be remove, reweight or relabel, got {action!r}.")
    if action == "relabel" and (label is None or new_labels is None):
        raise ValueError("action='relabel' needs label= and new_labels=.")
    _check_prune_ratio(prune_ratio)
    if df.npartitions != scores.npartitions:
        raise ValueError(
            f"df and scores have different partitions ({df.npartitions} and "
            f"{scores.npartitions})."
        )
    if persist:
        scores = scores.persist()
    sel = _select(scores, _budget(prune_ratio))
    lowest = _mask(scores, sel)
    acted = sel.k
    if action == "remove":
        out = df[~lowest]
    elif action == "reweight":
        weights = scores.map_partitions(
            _weights_partition,
            lowest,
            sel.after,
            sel.low,
            weight_column,
            meta=(weight_column, "float64"),
        )
        out = df.assign(**{weight_column: weights})
        acted = (weights < 1).sum()
        out = out[out[weight_column] > 0]
    else:
        flip = lowest & (scores < 0)
        out = df.assign(**{label: df[label].where(~flip, new_labels)})
        acted = flip.sum()
    written = out.to_parquet(path, compute=False, **to_parquet_kwargs)
    _, acted = dask.compute(written, acted)  # one computation
    return CleanedRows(str(path), sel.n, int(acted), float(sel.threshold))
