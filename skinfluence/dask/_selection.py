"""The exact selection of the lowest scores on Dask, by tree reductions.

:func:`kth_smallest` finds the k-th smallest score exactly by a radix
selection over the (persisted) scores; :func:`lowest_mask` marks the k
lowest rows, ties broken by position as ``numpy.argsort(kind="stable")``
breaks them, so the rows cleaned are those ``InfluenceFilter`` acts on for
the same scores. Every pass of the selection is a tree reduction on the
workers: the client receives one result per pass, whatever the number of
blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: at most this many candidate scores are gathered on the client by the
#: exact selection; above it, one more radix pass narrows them
GATHER_LIMIT = 2**20
#: partial results merged per task of the selection's tree reductions: each
#: pass brings one result to the client, however many blocks there are
SPLIT_EVERY = 16


class _Blocks:
    """The blocks (partitions) of a 1-D dask Array or Series: keys and graph."""

    def __init__(self, scores) -> None:
        parts = scores.to_delayed()  # one optimised graph, shared by the parts
        parts = list(np.ravel(parts)) if isinstance(parts, np.ndarray) else list(parts)
        self.keys = [p.key for p in parts]
        self.anchor = parts[0]
        self.frame = hasattr(scores, "map_partitions")

    def graph(self, name: str, layer: dict):
        """The blocks' graph with ``layer`` (named ``name``) on top."""
        from dask.highlevelgraph import HighLevelGraph

        return HighLevelGraph.from_collections(name, layer, dependencies=[self.anchor])

    def reduce(self, leaf, *args, combine):
        """``combine`` of ``leaf(block, *args)`` over the blocks, computed.

        A tree of tasks, each combining at most :data:`SPLIT_EVERY` partial
        results; the client receives the root only, so what reaches it does
        not grow with the blocks.
        """
        from dask.base import tokenize
        from dask.delayed import Delayed

        name = f"{leaf.__name__.strip('_')}-{tokenize(self.keys, leaf, args)}"
        layer = {(name, 0, i): (leaf, key, *args) for i, key in enumerate(self.keys)}
        level = [(name, 0, i) for i in range(len(self.keys))]
        depth = 0
        while len(level) > 1:
            depth += 1
            groups = [
                level[i : i + SPLIT_EVERY] for i in range(0, len(level), SPLIT_EVERY)
            ]
            level = [(name, depth, j) for j in range(len(groups))]
            layer.update(
                {key: (combine, *g) for key, g in zip(level, groups, strict=True)}
            )
        return Delayed(level[0], self.graph(name, layer), layer=name).compute()

    def ties_before(self, t: float):
        """Per block, the scores equal to ``t`` in the blocks before it, lazily.

        A dask collection with one row per block (a Series for a DataFrame),
        from an exclusive scan of the blocks' counts by a tree of sums
        (log(blocks) levels, each task adding at most :data:`SPLIT_EVERY`
        values); nothing reaches the client.
        """
        from dask.base import tokenize

        name = f"ties-before-{tokenize(self.keys, t)}"
        counts = [(f"{name}-n", i) for i in range(len(self.keys))]
        layer = {
            c: (_equal_count, k, t) for c, k in zip(counts, self.keys, strict=True)
        }
        before = _exclusive_sums(layer, name, counts)
        cells = [(name, i) for i in range(len(self.keys))]
        layer.update(
            {c: (_cell, b, self.frame) for c, b in zip(cells, before, strict=True)}
        )
        graph = self.graph(name, layer)
        if self.frame:
            import dask.dataframe as dd

            divisions = (None,) * (len(cells) + 1)
            return dd.from_graph(dict(graph), _cell(0, True), divisions, cells, name)
        import dask.array as da

        return da.Array(graph, name, chunks=((1,) * len(cells),), dtype=np.int64)


def _exclusive_sums(layer: dict, name: str, counts: list, depth: int = 0) -> list:
    """Keys (in ``layer``) of the sums of the ``counts`` before each of them.

    Blelloch's scan as a tree: the groups of :data:`SPLIT_EVERY` are summed,
    the sums scanned one level up, and each item adds its group's start to
    the items before it in the group.
    """
    groups = [counts[i : i + SPLIT_EVERY] for i in range(0, len(counts), SPLIT_EVERY)]
    starts = [0]
    if len(groups) > 1:
        sums = [(f"{name}-sum{depth}", j) for j in range(len(groups))]
        layer.update(
            {key: (_add_ints, *g) for key, g in zip(sums, groups, strict=True)}
        )
        starts = _exclusive_sums(layer, name, sums, depth + 1)
    out = []
    for j, (start, group) in enumerate(zip(starts, groups, strict=True)):
        for i in range(len(group)):
            key = (f"{name}-before{depth}", j * SPLIT_EVERY + i)
            layer[key] = (_add_ints, start, *group[:i])
            out.append(key)
    return out


def _keys(values) -> np.ndarray:
    """float64 -> uint64 with the same order (-0.0 taken as 0.0); NaN refused."""
    a = np.asarray(values, dtype=np.float64) + 0.0
    if np.isnan(a).any():
        raise ValueError("The scores contain NaN.")
    b = a.view(np.uint64)
    top = np.uint64(1 << 63)
    return np.where(b & top, ~b, b | top)


def _value_of(key: int) -> float:
    top = 1 << 63
    b = key & ~top if key & top else ~key & (2**64 - 1)
    return float(np.array([b], dtype=np.uint64).view(np.float64)[0])


def _summary(values) -> tuple:
    """(rows, rows below 0, smallest key or None) of a block."""
    k = _keys(values)
    negative = int(np.sum(np.asarray(values, dtype=np.float64) < 0))
    return len(k), negative, int(k.min()) if len(k) else None


def _merge_summaries(*parts) -> tuple:
    lows = [p[2] for p in parts if p[2] is not None]
    return sum(p[0] for p in parts), sum(p[1] for p in parts), min(lows, default=None)


def _prefixed(values, prefix: int, fixed: int) -> np.ndarray:
    """The keys whose top ``fixed`` bits are ``prefix``."""
    k = _keys(values)
    return k[(k >> np.uint64(64 - fixed)) == np.uint64(prefix)] if fixed else k


def _digit_counts(values, prefix: int, fixed: int) -> np.ndarray:
    """Counts of the next 16 bits of the keys whose top ``fixed`` bits are ``prefix``."""
    digits = (_prefixed(values, prefix, fixed) >> np.uint64(48 - fixed)) & np.uint64(
        0xFFFF
    )
    return np.bincount(digits.astype(np.int64), minlength=2**16)


def _add(*counts):
    return sum(counts[1:], counts[0])


def _last_pass(values, prefix: int, fixed: int, gather: bool) -> tuple:
    """The keys of prefix ``prefix`` (when ``gather``), and the smallest key above them."""
    k = _keys(values)
    above = k[(k >> np.uint64(64 - fixed)) > np.uint64(prefix)] if fixed else k[:0]
    found = _prefixed(values, prefix, fixed) if gather else k[:0]
    return found, int(above.min()) if len(above) else None


def _merge_last(*parts) -> tuple:
    above = [p[1] for p in parts if p[1] is not None]
    return np.concatenate([p[0] for p in parts]), min(above, default=None)


@dataclass
class _Selection:
    """The ``k`` lowest scores, as one radix selection found them.

    ``threshold`` is the ``k``-th smallest score (``-inf`` for ``k = 0``),
    ``below`` the rows under it, ``after`` the ``(k + 1)``-th smallest (the
    ``k``-th when ``k = n``; the smallest when ``k = 0``) and ``low`` the
    smallest.
    """

    n: int
    k: int
    threshold: float
    below: int
    after: float
    low: float


def _select(scores, k) -> _Selection:
    """The exact ``k``-th and ``(k + 1)``-th smallest scores, and the smallest.

    ``k`` is an int or a function of ``(n, rows below 0)``. One pass counts
    the rows, the negative ones and the smallest key; each radix pass counts
    the next 16 bits among the candidates left (65,536 counts, merged by a
    tree of additions), until at most :data:`GATHER_LIMIT` candidates remain;
    a last pass gathers them (and the smallest key above them) and the client
    sorts them. At most six passes; what reaches the client is at most one
    histogram (512 KiB) or the candidates per pass, whatever the blocks.
    """
    blocks = _Blocks(scores)
    n, negative, low = blocks.reduce(_summary, combine=_merge_summaries)
    k = k(n, negative) if callable(k) else int(k)
    if not 0 <= k <= n:
        raise ValueError(f"k must be in 0..{n} (the rows), got {k}.")
    low = np.inf if low is None else _value_of(low)
    if k == 0:
        return _Selection(n, 0, -np.inf, 0, low, low)
    prefix, fixed, rank, left = 0, 0, k, n
    while fixed < 64 and left > GATHER_LIMIT:
        counts = blocks.reduce(_digit_counts, prefix, fixed, combine=_add)
        cum = np.cumsum(counts)
        digit = int(np.searchsorted(cum, rank))
        rank -= int(cum[digit - 1]) if digit else 0
        left = int(counts[digit])
        prefix, fixed = (prefix << 16) | digit, fixed + 16
    if fixed == 64:  # ``left`` keys equal to ``prefix``, ``rank``-th among them
        key, below, after = prefix, k - rank, prefix if left > rank else None
        if after is None and k < n:
            _, after = blocks.reduce(_last_pass, prefix, 64, False, combine=_merge_last)
    else:
        found, above = blocks.reduce(
            _last_pass, prefix, fixed, True, combine=_merge_last
        )
        found = np.sort(found)
        key = int(found[rank - 1])
        below = k - rank + int(np.searchsorted(found, found[rank - 1], side="left"))
        after = int(found[rank]) if rank < len(found) else above
    threshold = _value_of(key)
    after = threshold if after is None else _value_of(after)
    return _Selection(n, k, threshold, below, after, low)


def kth_smallest(scores, k: int) -> float:
    """The exact ``k``-th smallest value (``k`` from 1) of a 1-D dask collection.

    A radix selection on the 64-bit keys of the float64 values: each pass
    counts the next 16 bits among the candidates left (65,536 counts per
    block, merged on the workers by a tree of additions, :data:`SPLIT_EVERY`
    at a time), until at most :data:`GATHER_LIMIT` candidates remain; they
    are gathered (by the same tree) and sorted on the client. Each pass
    brings one result to the client (a histogram of 512 KiB, or the
    candidates), however many blocks there are. At most six passes; persist
    the scores first, or each pass recomputes them.

    Parameters
    ----------
    scores : dask Array of shape (n,) or dask Series
    k : int
        In ``1 .. n``.

    Returns
    -------
    float

    Examples
    --------
    >>> import dask.array as da
    >>> from skinfluence.dask import kth_smallest
    >>> s = da.from_array([3.0, -1.0, 2.0, 2.0, 7.0], chunks=2)
    >>> kth_smallest(s, 1), kth_smallest(s, 3), kth_smallest(s, 4)
    (-1.0, 2.0, 3.0)
    """
    if not (isinstance(k, int | np.integer) and k >= 1):
        raise ValueError(f"k must be an int >= 1, got {k!r}.")
    return _select(scores, k).threshold


def _equal_count(values, t: float) -> int:
    return int(np.sum(np.asarray(values, dtype=np.float64) == t))


def _add_ints(*values) -> int:
    return int(sum(values))


def _lowest_block(values, t, ties_before, ties_needed):
    """Rows of a block among the k lowest: below ``t``, or tied and early enough."""
    a = np.asarray(values, dtype=np.float64)
    tied = a == t
    rank = int(np.asarray(ties_before).reshape(-1)[0]) + np.cumsum(tied)
    return (a < t) | (tied & (rank <= ties_needed))


def _lowest_partition(values, t, ties_before, ties_needed):
    out = _lowest_block(values.to_numpy(), t, ties_before, ties_needed)
    return values.__class__(out, index=values.index, name="lowest")


def _mask(scores, sel: _Selection):
    """The lazy mask of the selection's ``k`` rows, ties broken by position.

    When every row tied with the threshold is in (``after > threshold``), the
    rows at or below it; else each block counts its ties first, and a tree
    of sums gives each block the ties before it.
    """
    t, needed = sel.threshold, sel.k - sel.below
    frame = hasattr(scores, "map_partitions")
    if sel.k == sel.n or sel.after > t:
        before, needed = 0, sel.n  # every tie is in
    else:
        before = _Blocks(scores).ties_before(t)
    if frame:
        import pandas as pd

        meta = pd.Series([], dtype=bool, name="lowest")
        return scores.map_partitions(
            _lowest_partition, t, before, needed, meta=meta, align_dataframes=False
        )
    if isinstance(before, int):
        return scores.map_blocks(_lowest_block, t, before, needed, dtype=bool)
    import dask.array as da

    return da.blockwise(
        _lowest_block,
        "i",
        scores,
        "i",
        t,
        None,
        before,
        "i",
        needed,
        None,
        dtype=bool,
        align_arrays=False,
        adjust_chunks={"i": scores.chunks[0]},
    )


def _cell(value: int, frame: bool):
    """One block's count as a one-row Series (frames) or array (arrays)."""
    if frame:
        import pandas as pd

        return pd.Series([value], dtype="int64")
    return np.array([value], dtype=np.int64)


def lowest_mask(scores, k: int):
    """A lazy boolean mask of the ``k`` lowest scores, ties broken by position.

    The rows ``numpy.argsort(scores, kind="stable")[:k]`` selects, found
    without sorting: the exact ``k``-th smallest score ``t`` and the
    ``(k + 1)``-th (:func:`kth_smallest`'s selection, run once), then, per
    block, the rows below ``t`` and the first ``k - #(s < t)`` rows equal to
    it, counted across the blocks in order (by a tree of sums on the workers,
    when ``t`` is tied past the ``k``-th row).

    Parameters
    ----------
    scores : dask Array of shape (n,) or dask Series
        Persist them first: the selection reads them up to six times (and
        the mask twice more when ties at the threshold are split).
    k : int
        In ``0 .. n``.

    Returns
    -------
    mask : dask Array or Series of bool, aligned with ``scores``

    Examples
    --------
    >>> import dask.array as da
    >>> from skinfluence.dask import lowest_mask
    >>> s = da.from_array([3.0, 1.0, 2.0, 1.0, 7.0], chunks=2)
    >>> lowest_mask(s, 2).compute().tolist()
    [False, True, False, True, False]
    >>> lowest_mask(s, 1).compute().tolist()
    [False, True, False, False, False]
    """
    return _mask(scores, _select(scores, k))
