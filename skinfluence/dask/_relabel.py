"""Relabelling on Dask: every row scored under every class, and the effects.

:func:`relabel_influence` ships the spec of :func:`compute_influence` with
a method that returns the relabel scores of each block;
:func:`relabel_effects` combines them per row as ``InfluenceFilter``
combines them (``action="relabel"``).
"""

from __future__ import annotations

import numpy as np

from .._actions import action_effects
from .._kernels import derive_seed
from .._scoring import (
    BATCH_SIZE,
    METHOD,
    OBJECTIVE,
    class_indices,
    resolve_method,
    scoring_options,
)
from ..models import as_torch_model
from ._client import HESSIAN_BYTES, HESSIAN_ROWS, client_spec, ship
from ._inputs import _as_inputs
from ._spec import _random_draws


class _Relabelled:
    """A method whose block scores are its relabel scores, ``(n_classes, n)``."""

    def __init__(self, method, n_classes: int) -> None:
        self.method = method
        self.n_classes = n_classes

    def score(self, model, objective, X, y, *, batch_size, random_state=None, **extra):
        return self.method.score_relabel(
            model,
            objective,
            X,
            y,
            n_classes=self.n_classes,
            batch_size=batch_size,
            random_state=random_state,
            **extra,
        )


def _relabel_rows(spec, idx, X, y, *, start=None, part=None) -> np.ndarray:
    """The relabel scores of one block: row ``k`` for class index ``idx[k]``."""
    n_classes = spec.method.n_classes
    if spec.random_seed is not None:  # "random": one stream per class
        seeds = [
            derive_seed(np.random.RandomState([spec.random_seed, c]))
            for c in range(n_classes)
        ]
        out = np.stack(
            [_random_draws(sd, len(X), start=start, part=part) for sd in seeds]
        )
    else:
        out = spec.score(X, y, start=start, part=part).reshape(n_classes, -1)
    return out[idx]


def _relabel_block(X, y, spec, idx, block_info=None):
    start = block_info[0]["array-location"][0][0]
    return _relabel_rows(spec, idx, X, np.asarray(y).reshape(-1), start=start)


def _relabel_partition(X, y, spec, idx, columns, partition_info=None):
    import pandas as pd

    part = 0 if partition_info is None else partition_info["number"]
    scores = _relabel_rows(spec, idx, X, y, part=part)
    return pd.DataFrame(scores.T, index=X.index, columns=columns)


def relabel_influence(
    estimator,
    X,
    y,
    X_val=None,
    y_val=None,
    *,
    classes,
    objective=OBJECTIVE,
    method=METHOD,
    sensitive_features_val=None,
    batch_size: int = BATCH_SIZE,
    random_state=None,
    verbose: int = 0,
    hessian_rows: int = HESSIAN_ROWS,
    hessian_bytes: int = HESSIAN_BYTES,
    client=None,
):
    """:func:`skinfluence._compute.relabel_influence` on Dask, lazily.

    The client computes what the method takes from the true labels once
    (the objective's gradients, ``(C + damping I)^-1 v`` on the Hessian rows
    with their true labels, the seed) as :func:`compute_influence` does, and
    every block runs the method's ``score_relabel`` on its rows. The
    parameters are those of :func:`compute_influence`, with ``classes``.

    Returns
    -------
    scores : dask Array of shape (n_classes, n_samples), or dask DataFrame
        For a DataFrame ``X``, one float64 column per class (named by it),
        with the partitions and index of ``X``.
    """
    resolve_method(method).check_relabel()  # before any work
    options = scoring_options(objective, method, sensitive_features_val, batch_size)
    inputs, spec = client_spec(
        estimator,
        X,
        y,
        X_val,
        y_val,
        options,
        random_state=random_state,
        hessian_rows=hessian_rows,
        hessian_bytes=hessian_bytes,
    )
    classes = np.asarray(classes)
    idx, n_classes = class_indices(spec.model, classes)
    spec.method = _Relabelled(spec.method, n_classes)
    shipped = ship(spec, client)
    if inputs.frame:
        import pandas as pd

        columns = list(classes)
        meta = pd.DataFrame({c: pd.Series([], dtype="float64") for c in columns})
        return inputs.X.map_partitions(
            _relabel_partition, inputs.y, shipped, idx, columns, meta=meta
        )
    import dask.array as da

    return da.map_blocks(
        _relabel_block,
        inputs.X,
        inputs.y[:, None],
        shipped,
        idx,
        drop_axis=1,
        new_axis=0,
        dtype=np.float64,
        chunks=((len(idx),), inputs.X.chunks[0]),
        name=f"relabel-influence-{spec.token}",
    )


def _effects(y, scores, classes, best: bool):
    """``InfluenceFilter``'s relabel effect per row (``_actions.action_effects``).

    ``scores`` has one row per label of ``classes`` (sorted).
    """
    codes = np.searchsorted(classes, np.asarray(y))
    effect, arg = action_effects(np.asarray(scores, dtype=np.float64), codes, "relabel")
    return classes[arg] if best else effect


def _effects_partition(y, scores, classes, best):
    out = _effects(y, scores.to_numpy().T, classes, best)
    return y.__class__(out, index=y.index, name="new_label" if best else "effect")


def relabel_effects(estimator, X, y, X_val=None, y_val=None, *, classes=None, **kwargs):
    """Per row, the best label change and its predicted effect, lazily.

    Scores every row under every class with what the method takes from the
    labels computed once at the true labels (one inverse-curvature solve for
    influence functions, then one forward-mode pass per class), and
    combines them as ``InfluenceFilter(action="relabel")`` does:
    relabelling row ``i`` from ``y_i`` to ``c`` moves the objective by
    ``s_i(y_i) - s_i(c)``; the effect is the lowest over ``c != y_i``
    (negative: the change helps). Pass both to :func:`write_cleaned` with
    ``action="relabel"``.

    Parameters
    ----------
    estimator, X, y, X_val, y_val
        As for :func:`compute_influence`.
    classes : array-like, default=None
        The labels; ``None`` takes the fitted model's.
    **kwargs
        The other parameters of :func:`compute_influence` (``method``,
        ``random_state``, ``hessian_rows``, ...).

    Returns
    -------
    effect : dask Array or Series, float64
    new_label : dask Array or Series
        Aligned with the rows of ``X``.

    Raises
    ------
    ValueError
        When the method defines no relabel scores
        (:meth:`~skinfluence.methods.Method.check_relabel`), before any work.
    """
    import dask.array as da

    inputs = _as_inputs(X, y)
    if classes is None:
        classes = as_torch_model(estimator).classes
        if classes is None:
            raise ValueError("This model does not know its classes: pass classes=.")
    classes = np.sort(np.asarray(classes))
    scores = relabel_influence(
        estimator, inputs.X, inputs.y, X_val, y_val, classes=classes, **kwargs
    )
    if inputs.frame:
        return tuple(
            inputs.y.map_partitions(
                _effects_partition,
                scores,
                classes=classes,
                best=best,
                meta=(
                    "new_label" if best else "effect",
                    classes.dtype if best else np.float64,
                ),
            )
            for best in (False, True)
        )
    return tuple(
        da.map_blocks(
            _effects,
            inputs.y,
            scores,
            classes,
            best,
            drop_axis=0,
            dtype=classes.dtype if best else np.float64,
            chunks=inputs.y.chunks,
        )
        for best in (False, True)
    )
