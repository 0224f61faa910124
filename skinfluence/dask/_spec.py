"""The scoring spec: what every block needs to score its rows, shipped once.

DESIGN section 4, "Beyond one machine". The client (``_client``) computes
the vectors every row is scored against and freezes the seed; they go into
a :class:`ScoringSpec`, which reaches each worker once. Every block then
runs the method's own ``score`` on its rows, as the in-memory path runs it
on all of them, with the objective replaced by a replay of the client's
vectors (:class:`_Replay`): the scores are the in-memory ones, bit for bit
in the same process when the blocks start at multiples of ``batch_size``,
and to rounding in another process (its BLAS may sum in another order).
"""

from __future__ import annotations

import copy
import hashlib
import threading
import uuid

import numpy as np
import torch

from .._kernels import all_finite

#: rows of one group of the "random" draws: row i takes draw i % G of the
#: stream seeded by (seed, i // G), so draws do not depend on the chunking
RANDOM_GROUP = 2**16

#: spec token -> times it was deserialised in this process
LOADS: dict[str, int] = {}
#: spec token -> torch threads in use while its blocks ran in this process
THREADS: dict[str, set] = {}

#: one block scored at a time per process (see ScoringSpec.score)
_SCORING = threading.RLock()


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
