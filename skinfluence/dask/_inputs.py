"""The training rows on Dask: checked, aligned, and brought to the client.

The rows as dask collections with the same row blocks (:func:`_as_inputs`),
and, for influence functions, the rows of the Hessian on the client: all of
them, or a uniform sample within a byte budget (:func:`_hessian_rows`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from .._kernels import derive_seed

#: rows read first to measure what one training row takes on the client
PILOT_ROWS = 64


@dataclass
class _Inputs:
    """The training rows as dask collections with the same row blocks."""

    X: object
    y: object
    frame: bool  # a dask DataFrame (partitions) or a dask Array (blocks)

    @property
    def n_rows(self) -> int | None:
        if self.frame:
            return None
        return int(self.X.shape[0])


def _as_inputs(X, y) -> _Inputs:
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(X, dd.DataFrame | dd.Series):
        if isinstance(y, dd.DataFrame) and len(y.columns) == 1:
            y = y[y.columns[0]]
        if not isinstance(y, dd.Series):
            raise TypeError(
                "With a dask DataFrame X, y must be a dask Series with the same "
                f"partitions (a column of the same frame), got {type(y).__name__}."
            )
        if X.npartitions != y.npartitions:
            raise ValueError(
                f"X and y have different partitions ({X.npartitions} and "
                f"{y.npartitions})."
            )
        return _Inputs(X, y, frame=True)
    if not isinstance(X, da.Array):
        raise TypeError(
            "compute_influence on Dask takes X as a dask Array or DataFrame, "
            f"got {type(X).__name__}."
        )
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim} dimensions.")
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has unknown chunk sizes: call X.compute_chunk_sizes() first."
        )
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})  # blocks of whole rows
    if isinstance(y, dd.Series):
        y = y.to_dask_array(lengths=True)
    if not isinstance(y, da.Array):
        y = np.asarray(y)
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise ValueError(f"y must be 1-D, got shape {y.shape}.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have different lengths ({X.shape[0]} and {y.shape[0]})."
        )
    y = y.reshape(-1) if y.ndim == 2 else y
    if not isinstance(y, da.Array):
        y = da.from_array(y, chunks=(X.chunks[0],))
    if y.chunks[0] != X.chunks[0]:
        y = y.rechunk((X.chunks[0],))
    return _Inputs(X, y, frame=False)


def _nbytes(a) -> int:
    """Bytes of an in-memory array, pandas object, sparse matrix or tensor."""
    if isinstance(a, torch.Tensor):
        if a.layout != torch.strided:
            a = a.coalesce() if a.is_sparse else a
            return _nbytes(a.values()) + _nbytes(a.indices())
        return a.element_size() * a.nelement()
    if hasattr(a, "memory_usage"):  # pandas: object columns counted deeply
        return int(np.sum(a.memory_usage(deep=True, index=False)))
    if hasattr(a, "indptr"):  # scipy.sparse
        return a.data.nbytes + a.indices.nbytes + a.indptr.nbytes
    return int(np.asarray(a).nbytes)


def _row_bytes(inputs: _Inputs, model, lengths) -> float:
    """Bytes one training row takes on the client, as read and as the model sees it.

    Measured on the first :data:`PILOT_ROWS` rows (of the first partition
    that has rows): exact for numeric arrays, an estimate for frames with
    text columns.
    """
    import dask

    if inputs.frame:
        first = int(np.argmax(np.asarray(lengths) > 0))
        X, y = (
            c.partitions[first].head(PILOT_ROWS, npartitions=1, compute=False)
            for c in (inputs.X, inputs.y)
        )
    else:
        X, y = inputs.X[:PILOT_ROWS], inputs.y[:PILOT_ROWS]
    X, y = dask.compute(X, y)
    if len(X) == 0:
        return 0.0
    read = _nbytes(X) + _nbytes(y)
    seen = _nbytes(model.prepare_X(X)) + _nbytes(model.prepare_y(y))
    return (read + seen) / len(X)


def _hessian_rows(inputs: _Inputs, n_max: int, max_bytes: int, random_state, model):
    """All training rows, or a uniform sample of them; and n.

    The sample has at most ``n_max`` rows and at most ``max_bytes`` bytes on
    the client, counting each row as read and as the model sees it (its
    prepared tensors): ``rows <= max_bytes / row bytes``. Returns
    ``(X, y, n_rows)`` in memory (NumPy or pandas).
    """
    import dask

    lengths = None
    if inputs.frame:
        lengths = inputs.X.map_partitions(len).compute()
        n = int(np.sum(lengths))
    else:
        n = inputs.n_rows
    row_bytes = _row_bytes(inputs, model, lengths) if n else 0.0
    if row_bytes > max_bytes:
        raise ValueError(
            f"hessian_bytes={max_bytes} is less than one training row on the client "
            f"({row_bytes:.0f} bytes as read and as the model sees it)."
        )
    if row_bytes:
        n_max = min(n_max, int(max_bytes // row_bytes))
    if n <= n_max:
        X, y = dask.compute(inputs.X, inputs.y)
        return X, y, n
    rng = np.random.RandomState(derive_seed(copy.deepcopy(random_state)))
    idx = np.sort(rng.choice(n, n_max, replace=False))
    if not inputs.frame:
        X, y = dask.compute(inputs.X[idx], inputs.y[idx])
        return X, y, n
    import pandas as pd

    bounds = np.r_[0, np.cumsum(lengths)]
    tasks = []
    for i, (xp, yp) in enumerate(
        zip(inputs.X.to_delayed(), inputs.y.to_delayed(), strict=True)
    ):
        local = idx[(idx >= bounds[i]) & (idx < bounds[i + 1])] - bounds[i]
        if len(local):
            tasks.append(dask.delayed(_take)(xp, yp, local))
    parts = dask.compute(*tasks)
    X = pd.concat([p[0] for p in parts])
    y = pd.concat([p[1] for p in parts])
    return X, y, n


def _take(X, y, rows):
    return X.iloc[rows], y.iloc[rows]
