"""Progress bars, switched on by ``verbose`` for the duration of a call.

The level lives in a context variable, so the kernels and methods show bars
without every signature carrying a ``verbose`` argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_LEVEL: ContextVar[int] = ContextVar("skinfluence_verbose", default=0)


@contextmanager
def verbosity(level) -> Iterator[None]:
    """Show progress bars (tqdm) inside the block when ``level > 0``.

    A caller's higher level wins, so an estimator's ``verbose`` reaches the
    kernels it calls through ``compute_influence``.
    """
    token = _LEVEL.set(max(int(level or 0), _LEVEL.get()))
    try:
        yield
    finally:
        _LEVEL.reset(token)


def progress(iterable: Iterable, *, desc: str, total: int | None = None) -> Iterable:
    """``iterable``, wrapped in a tqdm bar when verbosity is on."""
    if _LEVEL.get() <= 0:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)
