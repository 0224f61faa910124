"""Timing and memory measurement for the benchmark scripts (re-exported by harness).

``timed`` runs a function and records, per run, its seconds and the share of
all CPUs other processes used meanwhile; ``Quiet`` waits for idle CPUs first;
``peak_beyond`` measures the peak RSS a function adds; ``run_child`` runs a
measurement in a fresh process and reads its ``child_result`` line back.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

CHILD_TAG = "BENCH_CHILD_RESULT "


# --------------------------------------------------------------------- timing
def sync(device: str) -> None:
    """Wait for queued GPU work, so that wall-clock times include it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def machine_busy_s() -> float | None:
    """Busy CPU-seconds of the whole machine since boot (/proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        vals = [int(x) for x in fields]
    except (OSError, ValueError):
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU-seconds this process has used (user + system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Quiet:
    """Waits before timed runs for other processes to leave the CPUs idle.

    Each wait at most ``max_wait`` seconds, all together at most ``budget``;
    idle: less than ``busy_share`` of all CPUs busy. ``Quiet()`` never waits.
    """

    max_wait: float = 0.0
    budget: float = 0.0
    busy_share: float = 0.15
    spent: float = 0.0

    def wait(self) -> None:
        left, start = min(self.max_wait, self.budget - self.spent), time.monotonic()
        ncpu = os.cpu_count() or 1
        while time.monotonic() - start < left:
            b0, t0 = machine_busy_s(), time.monotonic()
            if b0 is None:
                break
            time.sleep(0.5)
            busy = (machine_busy_s() - b0) / ((time.monotonic() - t0) * ncpu)
            if busy < self.busy_share:
                break
        self.spent += time.monotonic() - start


@dataclass
class Timing:
    """Seconds of each run, and the share of all CPUs other processes used."""

    result: object = None
    seconds: list = field(default_factory=list)
    other: list = field(default_factory=list)

    @property
    def best(self) -> float:  # the fastest run: the least disturbed by other load
        return min(self.seconds)

    @property
    def other_at_best(self) -> float | None:
        return self.other[self.seconds.index(self.best)]

    def runs(self, digits: int = 3) -> str:
        return ", ".join(f"{t:.{digits}f}" for t in self.seconds)


def timed(fn, *, repeats: int = 1, device: str = "cpu", quiet: Quiet | None = None):
    """Run ``fn()`` ``repeats`` times; a :class:`Timing` with its last result."""
    out, ncpu = Timing(), os.cpu_count() or 1
    for _ in range(repeats):
        if quiet is not None:
            quiet.wait()
        sync(device)
        b0, c0, t0 = machine_busy_s(), own_cpu_s(), time.perf_counter()
        out.result = fn()
        sync(device)
        dt = time.perf_counter() - t0
        b1, c1 = machine_busy_s(), own_cpu_s()
        out.seconds.append(dt)
        others = None if b0 is None or b1 is None else ((b1 - b0) - (c1 - c0))
        out.other.append(None if others is None else max(0.0, others / (dt * ncpu)))
    return out


@contextmanager
def stopwatch():
    """``with stopwatch() as sw: ...`` then ``sw["seconds"]``."""
    sw, t0 = {"seconds": float("nan")}, time.perf_counter()
    try:
        yield sw
    finally:
        sw["seconds"] = time.perf_counter() - t0


def fmt_share(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


# --------------------------------------------------------------------- memory
def rss_mb() -> float | None:
    """Resident set size now, in MiB (psutil, else /proc/self/statm)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pass  # /proc below
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


def hwm_mb() -> float | None:
    """``VmHWM`` (peak RSS since start or the last reset) in MiB, if readable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass  # unreadable: None
    return None


def reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0); False if unable.

    Not ``ru_maxrss``: in a child started by fork + exec it counts the
    parent's pages before the exec.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return hwm_mb() is not None
    except OSError:
        return False


def peak_beyond(fn) -> tuple[object, float | None]:
    """``(fn(), peak RSS during it minus RSS before, in MiB)``; None if unknown."""
    base = rss_mb()
    if not reset_peak() or base is None:
        return fn(), None
    return fn(), hwm_mb() - base


def child_result(payload: dict) -> None:
    """Print the result line that :func:`run_child` reads back."""
    print(CHILD_TAG + json.dumps(payload), flush=True)


def run_child(script: Path, args: list[str]) -> dict:
    """Run ``python script *args`` in a fresh process; its :func:`child_result`."""
    cmd = [sys.executable, str(script), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(CHILD_TAG):
            return json.loads(line[len(CHILD_TAG) :])
    raise RuntimeError(f"child {' '.join(args)} failed (rc={proc.returncode}):\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")  # fmt: skip
