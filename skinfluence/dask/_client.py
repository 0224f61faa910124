"""The client's work on Dask: the scoring spec, once, and the lazy scores.

On row-chunked dask arrays or dask DataFrames the client does the small,
global work once: it fits nothing, but resolves the method, binds the
objective to the (small, in-memory) validation rows and computes the
vectors every row is scored against: ``v = grad J`` at the fitted
parameters, at every ensemble member or at every checkpoint, or
``(H + damping I)^-1 v`` for influence functions. It freezes the seed. All
of it goes into a :class:`~skinfluence.dask.ScoringSpec`, which reaches each
worker once (``Client.scatter(..., broadcast=True)``; without a distributed
client, one key of the graph), and every block scores its rows with it.
"""

from __future__ import annotations

import copy

import numpy as np

from .._kernels import derive_seed
from .._scoring import BATCH_SIZE, METHOD, OBJECTIVE, prepare_scoring, scoring_options
from ..methods import IP
from ..objectives._validation import prepare_validation
from ._inputs import _as_inputs, _hessian_rows, _Inputs
from ._spec import ScoringSpec, _digest, _FullPenalty, _Recorder

#: default byte budget of the Hessian rows on the client (``hessian_bytes``)
HESSIAN_BYTES = 2**28
#: default number of Hessian rows on the client (``hessian_rows``)
HESSIAN_ROWS = 100_000


def _frozen(random_state):
    """The ``random_state`` every block gets: an int, or a RandomState snapshot."""
    if random_state is None:
        return derive_seed(None)  # drawn once, on the client
    if isinstance(random_state, np.random.RandomState):
        return copy.deepcopy(random_state)
    return random_state


def _replayable(method) -> bool:
    """Whether scores are per row once the objective's gradients are known."""
    return bool(method.row_separable)


def _objective_free(method) -> bool:
    """Whether scores are per row and read no objective."""
    return _replayable(method) and not method.needs_objective


def _inverts_curvature(method) -> bool:
    """Whether the method scores ``<(H + damping I)^-1 v, grad l_i>``."""
    return bool(method.inverts_curvature) and hasattr(method, "inverse_hvp")


def build_spec(
    model,
    method_,
    bound,
    inputs: _Inputs,
    X_val,
    y_val,
    *,
    batch_size: int,
    random_state,
    hessian_rows: int,
    hessian_bytes: int = HESSIAN_BYTES,
) -> ScoringSpec:
    """The client's part: the vectors, the seed and the validation rows, once."""
    frozen = _frozen(random_state)
    validation = None
    if method_.needs_validation_rows:
        validation = prepare_validation(model, X_val, y_val)
    if method_.random_draws:
        return ScoringSpec(
            model,
            method_,
            [],
            None,
            batch_size,
            frozen,
            random_seed=derive_seed(frozen),
        )
    if _inverts_curvature(method_):
        v = bound.gradient(model.params, batch_size=batch_size)
        X_h, y_h, n = _hessian_rows(inputs, hessian_rows, hessian_bytes, frozen, model)
        X_t, y_t = model.prepare_X(X_h), model.prepare_y(y_h)
        hmodel = model if len(X_t) == n else _FullPenalty(model, n)
        x = method_.inverse_hvp(
            hmodel,
            v,
            X_t,
            y_t,
            batch_size=batch_size,
            random_state=copy.deepcopy(frozen),
        )
        calls = [(_digest(model.params), {k: t.detach() for k, t in x.items()})]
        return ScoringSpec(model, IP(), calls, None, batch_size, frozen)
    if _replayable(method_) and method_.needs_objective:
        # a dry run on the validation rows records the gradients the method
        # asks for; every block replays them
        recorder = _Recorder(bound)
        X_probe, y_probe = prepare_validation(model, X_val, y_val)
        method_.score(
            model,
            recorder,
            X_probe,
            y_probe,
            batch_size=batch_size,
            random_state=copy.deepcopy(frozen),
            **({} if validation is None else {"validation": validation}),
        )
        return ScoringSpec(
            model, method_, recorder.calls, validation, batch_size, frozen
        )
    if _objective_free(method_):
        return ScoringSpec(model, method_, [], validation, batch_size, frozen)
    raise NotImplementedError(
        f"method={method_._name()!r} is not known to score rows independently "
        "of one another, so it cannot run block by block on Dask. Supported: ip, "
        "ip_ensemble, tracin, influence_function, self_influence, loss, random "
        "and the signal_* methods; a Method subclass whose scores are per row "
        "once its objective's gradients are known can set row_separable = True."
    )


def _current_client():
    """The distributed client dask would compute on now, or None."""
    from dask.base import get_scheduler

    owner = getattr(get_scheduler(), "__self__", None)
    return owner if type(owner).__name__ == "Client" else None


def ship(spec: ScoringSpec, client=None):
    """The spec as a graph argument that reaches each worker once.

    With a distributed client (``client``, or the one dask computes on now:
    the default client, or ``dask.config.set(scheduler=client)``), the spec
    is scattered to every worker (``broadcast=True``) and the tasks refer to
    its future, which keeps it alive as long as the scores are; otherwise
    (synchronous or threaded scheduler) it is one key of the graph.
    """
    import dask

    client = client or _current_client()
    if client is not None:
        return client.scatter(spec, broadcast=True, hash=False)
    return dask.delayed(spec, pure=False, traverse=False)


def _score_block(X, y, spec, block_info=None):
    start = block_info[0]["array-location"][0][0]
    return spec.score(X, np.asarray(y).reshape(-1), start=start)


def _score_partition(X, y, spec, partition_info=None):
    import pandas as pd

    part = 0 if partition_info is None else partition_info["number"]
    scores = spec.score(X, y, part=part)
    return pd.Series(scores, index=X.index, name="influence")


def lazy_scores(inputs: _Inputs, shipped, token: str):
    """The blocks' scores: a dask Array (or Series) aligned with the rows."""
    if inputs.frame:
        import pandas as pd

        meta = pd.Series([], dtype="float64", name="influence")
        return inputs.X.map_partitions(_score_partition, inputs.y, shipped, meta=meta)
    import dask.array as da

    return da.map_blocks(
        _score_block,
        inputs.X,
        inputs.y[:, None],
        shipped,
        drop_axis=1,
        dtype=np.float64,
        chunks=(inputs.X.chunks[0],),
        name=f"influence-{token}",
    )


def compute_influence(
    estimator,
    X,
    y,
    X_val=None,
    y_val=None,
    *,
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
    """Score every row of a dask Array or DataFrame, lazily, block by block.

    The scores of :func:`skinfluence.compute_influence` (which calls this
    for dask input), as a lazy collection aligned with the rows of ``X``.

    Parameters
    ----------
    estimator : fitted estimator, Pipeline, or TorchModel
        The model, fitted in memory (on a sample, or by a streamed fit).
    X : dask Array of shape (n_samples, n_features) or dask DataFrame
        The training rows, chunked along the rows only (column chunks are
        merged).
    y : dask Array, dask Series or array-like of shape (n_samples,)
        Their labels, with the row blocks of ``X`` (an array is rechunked to
        them; a Series must have the partitions of a DataFrame ``X``).
    X_val, y_val : array-like, default=None
        Validation rows, in memory.
    objective, method, sensitive_features_val, batch_size
        As for :func:`skinfluence.compute_influence`.
    random_state : int, RandomState instance or None, default=None
        As for :func:`skinfluence.compute_influence`; ``None`` draws one
        seed on the client, used by every block.
    verbose : int, default=0
        Ignored: use Dask's progress bars or dashboard.
    hessian_rows : int, default=100_000
        ``method="influence_function"`` only: the Hessian is that of the
        mean loss over all training rows when there are at most this many
        (the in-memory result), else over a uniform sample of this many
        rows (seeded by ``random_state``), plus the penalty of all rows.
        They are brought to the client, which solves for
        ``(H + damping I)^-1 v`` once.
    hessian_bytes : int, default=2**28
        ``method="influence_function"`` only: the most bytes the Hessian rows
        take on the client, each row counted as read and as the model sees
        it (its prepared tensors), measured on the first 64 rows. The sample
        has at most ``hessian_bytes / row bytes`` rows (256 MiB: 100,000 rows
        of about 160 float64 features); the solver's own memory is that of
        the in-memory path (``P x P`` for ``solver="exact"``, ``batch_size x
        P`` for "cg" and "lissa").
    client : distributed.Client, default=None
        Where the scoring spec is scattered (``broadcast=True``), and so
        where the scores must be computed. ``None``: the client dask
        computes on now (the default client, or the one set with
        ``dask.config.set(scheduler=client)``); with none (synchronous or
        threaded scheduler) the spec is one key of the graph.

    Returns
    -------
    scores : dask Array of shape (n_samples,) or dask Series, float64
        Lazy, with the row blocks (partitions and index) of ``X``.

    See Also
    --------
    skinfluence.dask.write_cleaned : the cleaned rows to Parquet.

    Notes
    -----
    Each block runs the method's ``score`` on its rows as the in-memory path
    runs it on all rows, so the scores equal the in-memory ones: bit for bit
    on the synchronous or threaded scheduler (in the client's process) when
    every block starts at a multiple of ``batch_size``; in a worker process,
    to rounding (about one unit in the last place: its BLAS kernels may sum
    in another order; the tests allow 1e-12 relative). Exceptions:
    "random" draws from streams seeded per group of 65,536 rows (per
    partition for a DataFrame), so its draws are not the in-memory ones (and
    on a DataFrame they depend on the partitioning); "influence_function"
    above ``hessian_rows`` rows uses a sampled Hessian. Signals that read
    validation rows compute their validation-side quantities once per block.
    """
    inputs, spec = client_spec(
        estimator,
        X,
        y,
        X_val,
        y_val,
        scoring_options(objective, method, sensitive_features_val, batch_size),
        random_state=random_state,
        hessian_rows=hessian_rows,
        hessian_bytes=hessian_bytes,
    )
    return lazy_scores(inputs, ship(spec, client), spec.token)


def client_spec(
    estimator,
    X,
    y,
    X_val,
    y_val,
    options: dict,
    *,
    random_state,
    hessian_rows: int,
    hessian_bytes: int,
):
    """The client's work of :func:`compute_influence`: the inputs and the spec.

    ``options`` holds ``objective``, ``method``, ``sensitive_features_val``
    and ``batch_size``, as :func:`prepare_scoring` takes them. Returns
    ``(inputs, spec)``: the rows as dask collections with the same blocks,
    and the :class:`ScoringSpec` every block scores with.
    """
    if not (isinstance(hessian_rows, int | np.integer) and hessian_rows >= 1):
        raise ValueError(f"hessian_rows must be an int >= 1, got {hessian_rows!r}.")
    if not (isinstance(hessian_bytes, int | np.integer) and hessian_bytes >= 1):
        raise ValueError(f"hessian_bytes must be an int >= 1, got {hessian_bytes!r}.")
    inputs = _as_inputs(X, y)
    model, method_, bound, batch_size = prepare_scoring(
        estimator, X_val, y_val, **options
    )
    spec = build_spec(
        model,
        method_,
        bound,
        inputs,
        X_val,
        y_val,
        batch_size=batch_size,
        random_state=random_state,
        hessian_rows=int(hessian_rows),
        hessian_bytes=int(hessian_bytes),
    )
    return inputs, spec
