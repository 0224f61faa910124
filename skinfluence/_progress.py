"""Progress, switched on by ``verbose`` for the duration of a call.

The level and the current stage bar live in context variables, so the
kernels, the methods and the skorch callback that counts epochs report
progress without every signature carrying a ``verbose`` argument.

One bar per ``fit`` (:func:`stage_bar`) counts its steps: every training
epoch of every fit (one step for a model without epochs), and one step per
scoring pass. Nested bars over row chunks, members and checkpoints
(:func:`progress`) are shown on a terminal only: in a log file they would
leave a line each, so there only the outermost bar is drawn.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_LEVEL: ContextVar[int] = ContextVar("skinfluence_verbose", default=0)
_BAR: ContextVar = ContextVar("skinfluence_bar", default=None)


@contextmanager
def verbosity(level) -> Iterator[None]:
    """Show progress (tqdm) inside the block when ``level > 0``.

    A caller's higher level wins, so an estimator's ``verbose`` reaches the
    kernels it calls through ``compute_influence``.
    """
    token = _LEVEL.set(max(int(level or 0), _LEVEL.get()))
    try:
        yield
    finally:
        _LEVEL.reset(token)


def level() -> int:
    """The verbosity in force."""
    return _LEVEL.get()


def _on_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(iterable: Iterable, *, desc: str, total: int | None = None) -> Iterable:
    """``iterable``, wrapped in a tqdm bar when verbose.

    Off a terminal (a log file) only the outermost bar is drawn: a nested
    one would leave a line each.
    """
    if _LEVEL.get() <= 0:
        return iterable
    from tqdm.auto import tqdm

    if not _on_terminal() and (
        _BAR.get() is not None or len(getattr(tqdm, "_instances", ())) > 0
    ):
        return iterable

    return tqdm(iterable, desc=desc, total=total, leave=False)


class _LogLines:
    """A bar for a log file: one line per stage, ``desc: step/total, stage``."""

    def __init__(self, desc: str, total: int) -> None:
        self.desc, self.total, self.n, self._stage = desc, total, 0, ""

    def set_postfix_str(self, stage: str, refresh: bool = True) -> None:
        self._stage = stage

    def update(self, n: int = 1) -> None:
        self.n += n
        sys.stderr.write(f"{self.desc}: {self.n}/{self.total}, {self._stage}\n")

    def close(self) -> None:
        pass


@contextmanager
def stage_bar(desc: str, total: int, verbose) -> Iterator[object]:
    """The one bar of a ``fit``, over ``total`` steps (nothing when not verbose).

    On a terminal a tqdm bar; in a log file one plain line per step.
    """
    if not verbose:
        yield None
        return
    if _on_terminal():
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="step", leave=False)
    else:
        bar = _LogLines(desc, total)
    token = _BAR.set(bar)
    try:
        yield bar
    finally:
        _BAR.reset(token)
        bar.close()


def advance(n: int = 1, *, stage: str | None = None, detail: str | None = None) -> None:
    """Move the current stage bar by ``n`` steps.

    ``stage`` names the stage now running ("round 1 of 3: fit"); ``detail``
    adds to it without replacing it ("epoch 2 of 10").
    """
    bar = _BAR.get()
    if bar is None:
        return
    if stage is not None:
        bar.stage = stage
    label = getattr(bar, "stage", "")
    if detail is not None:
        label = f"{label}, {detail}" if label else detail
    bar.set_postfix_str(label, refresh=False)
    bar.update(n)


def reach(step: int, *, stage: str | None = None) -> None:
    """Move the current stage bar to ``step`` (a stage done, epochs or not)."""
    bar = _BAR.get()
    if bar is not None and step > bar.n:
        advance(step - bar.n, stage=stage)
    elif bar is not None and stage is not None:
        bar.stage = stage
        bar.set_postfix_str(stage)
