"""Influence on Dask: score and clean training sets larger than memory.

DESIGN section 4, "Beyond one machine". On row-chunked dask arrays or dask
DataFrames the client does the small, global work once: it fits nothing,
but resolves the method, binds the objective to the (small, in-memory)
validation rows and computes the vectors every row is scored against:
``v = grad J`` at the fitted parameters, at every ensemble member or at every
checkpoint, or ``(H + damping I)^-1 v`` for influence functions. It freezes
the seed. All of it goes into a :class:`ScoringSpec`, which reaches each
worker once (``Client.scatter(..., broadcast=True)``; without a distributed
client, one key of the graph). Every block then runs the method's own
``score`` on its rows, as the in-memory path runs it on all of them, with
the objective replaced by a replay of the client's vectors: the scores are
the in-memory ones, bit for bit in the same process when the blocks start at
multiples of ``batch_size``, and to rounding in another process (its BLAS
may sum in another order).

Cleaning (:func:`write_cleaned`) picks the rows of lowest score exactly: the
k-th smallest score by a radix selection over the (persisted) scores, ties
broken by position as ``numpy.argsort(kind="stable")`` breaks them, so the
rows written are those ``InfluenceFilter`` keeps on the same data. Every
pass of the selection is a tree reduction on the workers: the client
receives one result per pass, whatever the number of blocks.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import math
import threading
import uuid
from dataclasses import dataclass

import numpy as np
import torch

from ._kernels import all_finite, derive_seed
from .methods import (
    IP,
    InfluenceFunction,
    IPEnsemble,
    Loss,
    Random,
    SelfInfluence,
    TracIn,
)
from .models import as_torch_model
from .objectives._validation import prepare_validation

#: rows of one group of the "random" draws: row i takes draw i % G of the
#: stream seeded by (seed, i // G), so draws do not depend on the chunking
RANDOM_GROUP = 2**16
#: at most this many candidate scores are gathered on the client by the
#: exact selection; above it, one more radix pass narrows them
GATHER_LIMIT = 2**20
#: default byte budget of the Hessian rows on the client (``hessian_bytes``)
HESSIAN_BYTES = 2**28
#: rows read first to measure what one training row takes on the client
PILOT_ROWS = 64

#: spec token -> times it was deserialised in this process
LOADS: dict[str, int] = {}
#: spec token -> torch threads in use while its blocks ran in this process
THREADS: dict[str, set] = {}


# ---------------------------------------------------------------- the spec
def _digest(params) -> str:
    """A fingerprint of a parameter dict (names, shapes, dtypes and values)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in params.items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class _Recorder:
    """An objective that records every gradient a method asks it for."""

    def __init__(self, bound) -> None:
        self.bound = bound
        self.calls: list[tuple[str, dict]] = []

    def gradient(self, params=None, batch_size: int = 4096) -> dict:
        params = self.bound.model.params if params is None else params
        v = self.bound.gradient(params, batch_size=batch_size)
        self.calls.append((_digest(params), {k: t.detach() for k, t in v.items()}))
        return v

    def __getattr__(self, name):
        return getattr(self.bound, name)


class _Replay:
    """An objective that returns the client's gradients, in the order recorded.

    It raises if a method asks for a gradient at other parameters than the
    client did (a method whose calls are not deterministic).
    """

    def __init__(self, model, calls) -> None:
        self.model = model
        self._calls = calls
        self._next = 0

    def gradient(self, params=None, batch_size: int = 4096) -> dict:
        params = self.model.params if params is None else params
        if self._next >= len(self._calls):
            raise RuntimeError(
                "The method asked for more gradients than on the client."
            )
        digest, v = self._calls[self._next]
        if _digest(params) != digest:
            raise RuntimeError(
                "The method asked for a gradient at other parameters than on the "
                "client: its scores cannot be computed block by block."
            )
        self._next += 1
        return dict(v)


class _FullPenalty:
    """``model`` with the L2 penalty of ``n_rows`` rows, whatever rows it sees.

    The Hessian from a sample of the rows is their mean curvature plus the
    penalty of the whole training set (scikit-learn's ``1 / (C n)``).
    """

    def __init__(self, model, n_rows: int) -> None:
        self._model = model
        self._n_rows = n_rows

    def l2(self, n_rows: int) -> dict:
        return self._model.l2(self._n_rows)

    def __getattr__(self, name):
        return getattr(self._model, name)


def _one_torch_thread() -> None:
    """Inside a distributed worker, torch runs one intra-op thread per task.

    Dask runs one task per worker thread; torch's own pool on top of that
    oversubscribes the cores. Outside a worker (the synchronous scheduler in
    the user's process) the user's setting is left alone.
    """
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


class ScoringSpec:
    """What every block needs to score its rows: shipped once per worker.

    Parameters
    ----------
    model : TorchModel
        The fitted model (with its preprocessing and checkpoints).
    method : Method
        The method run on each block.
    calls : list of (str, dict)
        The objective's gradients the method asks for, in order, each with
        the fingerprint of the parameters it was asked at (empty for
        objective-free methods).
    validation : tuple of (Tensor, Tensor) or None
        The prepared validation rows, for methods that read them.
    batch_size : int
    random_state : int or RandomState
        Frozen: every block gets the same (a copy of a RandomState).
    random_seed : int or None
        For "random": the seed of the per-group streams.

    Notes
    -----
    It is pickled with cloudpickle (torch modules defined in ``__main__`` or
    in a test file travel by value) and counts, per process, how often it is
    unpickled (:data:`LOADS`), which the tests read on the workers.
    """

    def __init__(
        self,
        model,
        method,
        calls,
        validation,
        batch_size: int,
        random_state,
        random_seed: int | None = None,
    ) -> None:
        self.model = model
        self.method = method
        self.calls = calls
        self.validation = validation
        self.batch_size = batch_size
        self.random_state = random_state
        self.random_seed = random_seed
        self.token = uuid.uuid4().hex

    def __getstate__(self) -> dict:
        import cloudpickle

        state = dict(self.__dict__)
        token = state.pop("token")
        return {"token": token, "payload": cloudpickle.dumps(state)}

    def __setstate__(self, state: dict) -> None:
        import cloudpickle

        self.__dict__.update(cloudpickle.loads(state["payload"]))
        self.token = state["token"]
        LOADS[self.token] = LOADS.get(self.token, 0) + 1

    def score(self, X, y, *, start: int | None = None, part: int | None = None):
        """Scores of one block of rows, float64, as the in-memory path gives them.

        ``start`` (the block's first row) or ``part`` (a DataFrame partition's
        number) place the block, for "random" only. Blocks of one process are
        scored one at a time (torch.func's forward-mode levels are global to
        the process, so two threads' ``jvp`` would collide): a threaded worker
        or scheduler gains no parallelism, process workers do.
        """
        with _SCORING:
            return self._score(X, y, start=start, part=part)

    def _score(self, X, y, *, start, part):
        _one_torch_thread()
        THREADS.setdefault(self.token, set()).add(torch.get_num_threads())
        if self.random_seed is not None:
            return _random_draws(self.random_seed, len(X), start=start, part=part)
        model = self.model
        Xt, yt = model.prepare_X(X), model.prepare_y(y)
        if len(Xt) != len(yt):
            raise ValueError(f"A block has {len(Xt)} rows of X and {len(yt)} of y.")
        if not all_finite(Xt):
            raise ValueError(
                "X contains NaN or infinity (after the model's preprocessing)."
            )
        if len(Xt) == 0:
            return np.zeros(0)
        extra = {} if self.validation is None else {"validation": self.validation}
        random_state = self.random_state
        if isinstance(random_state, np.random.RandomState):
            random_state = copy.deepcopy(random_state)
        objective = _Replay(model, self.calls) if self.calls else None
        scores = self.method.score(
            model,
            objective,
            Xt,
            yt,
            batch_size=self.batch_size,
            random_state=random_state,
            **extra,
        )
        return torch.as_tensor(scores).detach().cpu().numpy().astype(np.float64)


def _random_draws(seed: int, n: int, *, start=None, part=None) -> np.ndarray:
    """Uniform draws in [0, 1) for ``n`` rows from ``start`` (or of partition ``part``)."""
    if start is None:  # a DataFrame partition: rows have no global position
        return np.random.default_rng([seed, 1, int(part)]).random(n)
    if n == 0:
        return np.zeros(0)
    first, last = start // RANDOM_GROUP, (start + n - 1) // RANDOM_GROUP
    draws = np.concatenate(
        [
            np.random.default_rng([seed, 0, g]).random(RANDOM_GROUP)
            for g in range(first, last + 1)
        ]
    )
    offset = start - first * RANDOM_GROUP
    return draws[offset : offset + n]


# --------------------------------------------------------------- the client
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


def _frozen(random_state):
    """The ``random_state`` every block gets: an int, or a RandomState snapshot."""
    if random_state is None:
        return derive_seed(None)  # drawn once, on the client
    if isinstance(random_state, np.random.RandomState):
        return copy.deepcopy(random_state)
    return random_state


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


def _replayable(method) -> bool:
    """Whether scores are per row once the objective's gradients are known."""
    return isinstance(method, IP | IPEnsemble | TracIn) or bool(
        getattr(method, "row_separable", False)
    )


def _objective_free(method) -> bool:
    from .signals import SignalMethod

    return isinstance(method, SelfInfluence | Loss | SignalMethod) or (
        not method.needs_objective and bool(getattr(method, "row_separable", False))
    )


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
    if isinstance(method_, Random):
        return ScoringSpec(
            model,
            method_,
            [],
            None,
            batch_size,
            frozen,
            random_seed=derive_seed(frozen),
        )
    if isinstance(method_, InfluenceFunction):
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


#: one block scored at a time per process (see ScoringSpec.score)
_SCORING = threading.RLock()


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
    random_state=None,
    verbose: int = 0,
    hessian_rows: int = 100_000,
    hessian_bytes: int = HESSIAN_BYTES,
    client=None,
    **options,
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
    **options : dict
        ``objective``, ``method``, ``sensitive_features_val`` and
        ``batch_size``, as for :func:`skinfluence.compute_influence`.

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
        random_state=random_state,
        hessian_rows=hessian_rows,
        hessian_bytes=hessian_bytes,
        **options,
    )
    return lazy_scores(inputs, ship(spec, client), spec.token)


def client_spec(
    estimator,
    X,
    y,
    X_val,
    y_val,
    *,
    random_state,
    hessian_rows,
    hessian_bytes=HESSIAN_BYTES,
    **options,
):
    """The client's work of :func:`compute_influence`: the inputs and the spec.

    Returns ``(inputs, spec)``: the rows as dask collections with the same
    blocks, and the :class:`ScoringSpec` every block scores with.
    """
    from ._compute import compute_influence as in_memory
    from ._compute import prepare_scoring

    names = ("objective", "method", "sensitive_features_val", "batch_size")
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise TypeError(
            f"compute_influence() got unexpected keyword arguments {unknown}."
        )
    defaults = inspect.signature(in_memory).parameters  # one place for the defaults
    options = {name: options.get(name, defaults[name].default) for name in names}
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


# ------------------------------------------------------- exact selection
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


# ----------------------------------------------------------------- cleaning
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
    from ._actions import n_prune

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
    from ._actions import reweight_strength

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


# ----------------------------------------------------------------- relabel
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
        seeds = [derive_seed(np.random.RandomState([spec.random_seed, c])) for c in range(n_classes)]
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
    client=None,
    **options,
):
    """:func:`skinfluence._compute.relabel_influence` on Dask, lazily.

    The client computes what the method takes from the true labels once
    (the objective's gradients, ``(C + damping I)^-1 v`` on the Hessian rows
    with their true labels, the seed) as :func:`compute_influence` does, and
    every block runs the method's ``score_relabel`` on its rows.
    ``options`` are those of :func:`compute_influence` (``random_state``,
    ``hessian_rows``, ...), with its defaults.

    Returns
    -------
    scores : dask Array of shape (n_classes, n_samples), or dask DataFrame
        For a DataFrame ``X``, one float64 column per class (named by it),
        with the partitions and index of ``X``.
    """
    from ._compute import class_indices

    defaults = inspect.signature(compute_influence).parameters
    for name in ("random_state", "hessian_rows"):
        options.setdefault(name, defaults[name].default)
    inputs, spec = client_spec(estimator, X, y, X_val, y_val, **options)
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
    """``InfluenceFilter``'s relabel effect per row (``_cleaning._effects``).

    ``scores`` has one row per label of ``classes`` (sorted).
    """
    from ._cleaning import _effects as combine

    codes = np.searchsorted(classes, np.asarray(y))
    effect, arg = combine(np.asarray(scores, dtype=np.float64), codes, "relabel")
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
        Passed to :func:`compute_influence`.

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

    from ._compute import relabel_influence as scores_of

    inputs = _as_inputs(X, y)
    if classes is None:
        classes = as_torch_model(estimator).classes
        if classes is None:
            raise ValueError("This model does not know its classes: pass classes=.")
    classes = np.sort(np.asarray(classes))
    scores = scores_of(
        estimator, inputs.X, inputs.y, X_val, y_val, classes=classes, **kwargs
    )
    if inputs.frame:
        return tuple(
            inputs.y.map_partitions(
                _effects_partition,
                scores,
                classes=classes,
                best=best,
                meta=("new_label" if best else "effect", classes.dtype if best else np.float64),
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
