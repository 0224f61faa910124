"""Scoring out of core on Dask: throughput, peak memory, scaling (issue 11).

``python benchmarks/bench_dask.py`` scores a table of 100 million rows x 100
float32 features (40 GB, more than this machine's memory) with ``method="ip"``
on a ``LocalCluster``, and writes ``benchmarks/results/dask.md`` (and
``dask.json``). ``--quick`` does the same at 2 million rows in under two
minutes (``dask_quick.md``).

The rows are generated on the workers, block by block, from per-block seeds
(a pool of 4,096 Gaussian rows per block, drawn from with replacement: cheap
to make, so the run measures scoring); the client never holds them. The
model is a ``torch.nn.Linear(100, 2)`` fitted on a 50,000-row sample that the
workers generate. Measured:

1. the in-memory path (``compute_influence`` on NumPy arrays, one torch
   thread) on the same kind of rows: the reference throughput per core;
2. Dask at one worker on the same rows, held in the worker: its overhead;
3. strong and weak scaling over 1..N workers, and the ensemble axis
   (``ip_ensemble`` with K members);
4. the out-of-core run: every score written to disk by the workers
   (``dask.array.to_npy_stack``), client and worker peak memory, and the
   exact 10% threshold of the written scores (``skinfluence.dask.kth_smallest``);
5. the cleaning workflow at a smaller size: the table written to Parquet by
   the workers, read back, scored, and its cleaned rows written
   (``skinfluence.dask.write_cleaned``).

It calls the public API only (``skinfluence.compute_influence``,
``skinfluence.dask``, ``skinfluence.models``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import harness
import numpy as np
import torch
from torch import nn

D = 100  # features
POOL = 4096  # distinct rows per block
SEED = 0


# ----------------------------------------------------------- generated rows
def _pool(seed: int, block: int):
    rng = np.random.default_rng([seed, block])
    return rng, rng.standard_normal((POOL, D), dtype=np.float32)


def _where(block_info):
    info = block_info[None]
    return info["chunk-location"][0], info["chunk-shape"][0]


def gen_X(seed, offset, block_info=None):
    """The rows of one block, from the seed ``(seed, block)``."""
    block, rows = _where(block_info)
    rng, pool = _pool(seed, offset + block)
    return pool[rng.integers(0, POOL, rows)]


def gen_y(seed, offset, w, block_info=None):
    """Their labels: a planted logistic model, from the same seed."""
    block, rows = _where(block_info)
    rng, pool = _pool(seed, offset + block)
    idx = rng.integers(0, POOL, rows)
    noisy = pool @ w + rng.logistic(size=POOL).astype(np.float32)
    return (noisy > 0).astype(np.int64)[idx]


def _chunks(n: int, chunk: int) -> tuple:
    full, rest = divmod(n, chunk)
    return (chunk,) * full + ((rest,) if rest else ())


def table(n: int, chunk: int, w: np.ndarray, *, seed=SEED, offset=0):
    """Lazy ``(X, y)`` of ``n`` generated rows in blocks of ``chunk``."""
    import dask.array as da
    from dask.base import tokenize

    rows = _chunks(n, chunk)
    tok = tokenize(n, chunk, seed, offset)
    X = da.map_blocks(
        gen_X,
        seed,
        offset,
        dtype=np.float32,
        chunks=(rows, (D,)),
        meta=np.empty((0, D), np.float32),
        name=f"genx-{tok}",
    )
    y = da.map_blocks(
        gen_y,
        seed,
        offset,
        w,
        dtype=np.int64,
        chunks=(rows,),
        meta=np.empty((0,), np.int64),
        name=f"geny-{tok}",
    )
    return X, y


def in_memory_rows(n: int, chunk: int, w, *, offset=0):
    """The same rows as :func:`table`, made here (for the in-memory path)."""
    X, y = np.empty((n, D), np.float32), np.empty(n, np.int64)
    start = 0
    for i, r in enumerate(_chunks(n, chunk)):
        info = {None: {"chunk-location": (i, 0), "chunk-shape": (r, D)}}
        X[start : start + r] = gen_X(SEED, offset, block_info=info)
        y[start : start + r] = gen_y(SEED, offset, w, block_info=info)
        start += r
    return X, y


# -------------------------------------------------------------------- model
def fit_model(X, y):
    """``nn.Linear(100, 2)`` by L-BFGS on the sample (cross-entropy, float32)."""
    torch.manual_seed(0)
    lin = nn.Linear(D, 2)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=50)

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(lin(Xt), yt)
        loss.backward()
        return loss

    opt.step(closure)
    return lin


# ------------------------------------------------------------------ cluster
def cluster(n_workers: int, memory_limit: str):
    """One LocalCluster of single-threaded worker processes, warmed up."""
    import dask
    from distributed import Client, LocalCluster

    # no spilling to disk: the in-memory reference run shares a worker with
    # rows persisted there, and spilling them would slow the Dask run down
    dask.config.set(
        {
            "distributed.worker.memory.target": False,
            "distributed.worker.memory.spill": False,
        }
    )
    lc = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=None,
    )
    client = Client(lc)
    client.run(_warm)  # imports, outside the timings
    return lc, client


def _warm():
    import warnings

    import pandas as pd

    import skinfluence.dask  # noqa: F401

    # dask's DataFrame code on the workers warns about pandas' block layout
    # of a 101-column frame; it is not this benchmark's concern
    warnings.filterwarnings("ignore", category=pd.errors.PerformanceWarning)

    return torch.get_num_threads()


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_mb():
    return harness.hwm_mb()


def _reset_peak():
    return harness.reset_peak()


def on(client, workers, collection):
    """Compute ``collection`` on ``workers`` only (the others stay idle)."""
    return client.compute(
        collection, workers=workers, allow_other_workers=False, sync=True
    )


def run_scored(client, fn, repeats: int = 1):
    """``fn()`` on the cluster ``repeats`` times: the best wall and worker CPU-s."""
    from distributed import get_task_stream

    walls, cpus, others = [], [], []
    for _ in range(repeats):
        cpu0 = sum(client.run(_cpu_s).values())
        with get_task_stream(client) as ts:
            t = harness.timed(fn)
        cpus.append(sum(client.run(_cpu_s).values()) - cpu0)
        walls.append(t.best)
        others.append(t.other_at_best)
    best = int(np.argmin(walls))
    return {
        "wall_s": walls[best],
        "walls": walls,
        "worker_cpu_s": min(cpus),
        "cpus": cpus,
        "other_share": others[best],
        "n_tasks": len(ts.data),
        "result": t.result,
    }


def generation_cpu_per_row(client, one, w, n, chunk, offset):
    """Worker CPU-seconds per row spent making rows (X and y), no scoring."""
    X, y = table(n, chunk, w, offset=offset)
    r = run_scored(client, lambda: on(client, one, [X.sum(), y.sum()]), repeats=2)
    return r["worker_cpu_s"] / n


def _save_block(scores, where, block_info=None):
    i = block_info[0]["chunk-location"][0]
    Path(where).mkdir(parents=True, exist_ok=True)
    np.save(Path(where) / f"{i:06d}.npy", scores)
    return np.zeros(1)


def _load_block(where, block_info=None):
    return np.load(Path(where) / f"{block_info[None]['chunk-location'][0]:06d}.npy")


def save_scores(scores, where):
    """A lazy write of every block of ``scores`` to ``where``, by the workers."""
    return scores.map_blocks(_save_block, str(where), chunks=(1,), dtype=float).sum()


def load_scores(where, chunks):
    import dask.array as da

    return da.map_blocks(
        _load_block,
        str(where),
        chunks=(chunks,),
        dtype=float,
        name=f"load-scores-{abs(hash(str(where)))}",
    )


# --------------------------------------------------------------- the steps
def _in_memory_run(model, Xv, yv, w, n, chunk, batch_size):
    """The in-memory path in this process: rows made here, one torch thread.

    Run on a worker (``client.submit``), so that it meets the load the Dask
    runs meet; returns (wall seconds, CPU-seconds, scores).
    """
    from skinfluence import compute_influence

    X, y = in_memory_rows(n, chunk, w)
    torch.set_num_threads(1)
    c0, t0 = _cpu_s(), time.perf_counter()
    scores = compute_influence(model, X, y, Xv, yv, batch_size=batch_size)
    return time.perf_counter() - t0, _cpu_s() - c0, scores


def in_memory(client, one, model, Xv, yv, w, n, chunk, batch_size):
    fut = client.submit(
        _in_memory_run, model, Xv, yv, w, n, chunk, batch_size, workers=one, pure=False
    )
    return fut.result()


def step_baseline(client, one, model, Xv, yv, w, n, chunk, batch_size, repeats):
    """In memory and Dask at one worker, on the same rows, taking turns."""
    from distributed import wait

    from skinfluence import compute_influence

    X, y = table(n, chunk, w)
    X, y = client.persist([X, y], workers=one, allow_other_workers=False)
    wait([X, y])
    mem, dsk = [], []
    for _ in range(repeats):
        wall, cpu, ref = in_memory(client, one, model, Xv, yv, w, n, chunk, batch_size)
        mem.append((wall, cpu))
        cpu0 = client.run(_cpu_s, workers=one)[one[0]]
        t0 = time.perf_counter()
        s = compute_influence(model, X, y, Xv, yv, batch_size=batch_size)
        build = time.perf_counter() - t0
        got = on(client, one, s)
        wall = time.perf_counter() - t0
        dsk.append((wall, client.run(_cpu_s, workers=one)[one[0]] - cpu0, build))
    mem_best = min(mem)
    dsk_best = min(dsk)
    # the cost of a task that does nothing: 500 of them, one worker
    tiny = da_zeros_plus_one(500)
    t = harness.timed(lambda: on(client, one, tiny), repeats=2)
    return {
        "in_memory": {
            "rows": n,
            "wall_s": mem_best[0],
            "cpu_s": min(c for _, c in mem),
            "walls": [m[0] for m in mem],
            "rows_per_s": n / mem_best[0],
            "rows_per_cpu_s": n / min(c for _, c in mem),
        },
        "overhead": {
            "rows": n,
            "wall_s": dsk_best[0],
            "worker_cpu_s": min(d[1] for d in dsk),
            "walls": [d[0] for d in dsk],
            "client_s": dsk_best[2],
            "per_task_s": t.best / 1000,  # the zeros and the +1
            "equal_to_in_memory": bool(np.array_equal(got, ref)),
            "max_abs_difference": float(np.abs(got - ref).max()),
            "repeats": repeats,
        },
    }


def da_zeros_plus_one(n):
    import dask.array as da

    return da.zeros(n, chunks=1).map_blocks(lambda b: b + 1)


def step_scaling(client, addrs, model, Xv, yv, w, n_strong, n_weak, chunk, batch_size):
    from skinfluence import compute_influence

    rows = []
    for nw in range(1, len(addrs) + 1):
        for kind, n in (("strong", n_strong), ("weak", n_weak * nw)):
            X, y = table(n, chunk, w, offset=10_000)

            def score(X=X, y=y, nw=nw):
                s = compute_influence(model, X, y, Xv, yv, batch_size=batch_size)
                return float(on(client, addrs[:nw], s.sum()))

            r = run_scored(client, score)
            r.pop("result")
            rows.append({"kind": kind, "workers": nw, "rows": n, **r})
            harness.log(f"  {kind} {nw} workers {n:,} rows: {r['wall_s']:.1f} s")
    return rows


def step_ensemble(client, addrs, model, Xv, yv, w, n, chunk, batch_size, members):
    from skinfluence import compute_influence
    from skinfluence.methods import IPEnsemble

    out = []
    X, y = table(n, chunk, w, offset=20_000)
    for k in members:
        method = IPEnsemble(n_members=k, max_dropout=0.01)

        def score(method=method):
            s = compute_influence(
                model,
                X,
                y,
                Xv,
                yv,
                method=method,
                batch_size=batch_size,
                random_state=0,
            )
            return float(on(client, addrs, s.sum()))

        r = run_scored(client, score)
        r.pop("result")
        out.append({"members": k, "workers": len(addrs), "rows": n, **r})
        harness.log(f"  ip_ensemble K={k}: {r['wall_s']:.1f} s")
    return out


def step_out_of_core(
    client, addrs, model, Xv, yv, w, n, chunk, batch_size, segment, deadline, where
):
    """Every score of ``n`` rows to disk, segment by segment, until the deadline."""
    import dask.array as da
    from distributed import get_task_stream

    from skinfluence import compute_influence
    from skinfluence.dask import kth_smallest

    gc.collect()
    n_ref = 8 * chunk
    bracket = [in_memory(client, addrs[:1], model, Xv, yv, w, n_ref, chunk, batch_size)]
    out_dir = Path(where) / "scores"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        X, y = table(n, chunk, w, offset=30_000)
        harness.reset_peak()
        client.run(_reset_peak)
        cpu0 = sum(client.run(_cpu_s).values())
        t0 = time.perf_counter()
        scores = compute_influence(model, X, y, Xv, yv, batch_size=batch_size)
        client_s = time.perf_counter() - t0  # v, the spec scattered, the graph
        done, segs, stream = 0, [], []
        while done < n:
            stop = min(n, done + segment)
            seg_t0 = time.perf_counter()
            with get_task_stream(client) as ts:
                on(
                    client,
                    addrs,
                    save_scores(scores[done:stop], out_dir / f"{len(segs):04d}"),
                )
            stream += ts.data
            segs.append(time.perf_counter() - seg_t0)
            done = stop
            left = deadline - time.monotonic()
            harness.log(f"  {done:,} rows scored, {time.perf_counter() - t0:.0f} s")
            if done < n and left < 1.2 * max(segs):
                harness.log("  stopping: the time budget is spent")
                break
        wall = time.perf_counter() - t0
        cpu = sum(client.run(_cpu_s).values()) - cpu0
        worker_peak = max(client.run(_peak_mb).values())
        client_peak = harness.hwm_mb()
        bracket.append(
            in_memory(client, addrs[:1], model, Xv, yv, w, n_ref, chunk, batch_size)
        )
        stored = da.concatenate(
            [
                load_scores(
                    out_dir / f"{i:04d}",
                    _chunks(min(segment, done - i * segment), chunk),
                )
                for i in range(len(segs))
            ]
        )
        k = int(math.floor(0.1 * done))
        t_sel = time.perf_counter()
        threshold = kth_smallest(stored, k) if k else float("nan")
        t_sel = time.perf_counter() - t_sel
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "rows_requested": n,
        "rows": done,
        "in_memory_rows": n_ref,
        "in_memory_wall_s": [b[0] for b in bracket],
        "in_memory_cpu_s": [b[1] for b in bracket],
        "workers": len(addrs),
        "client_s": client_s,
        "wall_s": wall,
        "worker_cpu_s": cpu,
        "segments_s": segs,
        "n_tasks": len(stream),
        "segment": segment,
        "worker_peak_mb": worker_peak,
        "client_peak_mb": client_peak,
        "threshold_10pct": threshold,
        "select_s": t_sel,
        "table_gb": done * D * 4 / 1e9,
    }


def _frame(X, y, cols):
    import pandas as pd

    return pd.DataFrame(X, columns=cols).assign(label=y)


def step_parquet(client, model, Xv, yv, w, n, chunk, batch_size, where):
    """Table to Parquet (by the workers), read back, scored, cleaned to Parquet."""
    import dask
    import dask.dataframe as dd
    import pandas as pd

    from skinfluence import compute_influence
    from skinfluence.dask import write_cleaned

    src, dst = Path(where) / "table", Path(where) / "clean"
    cols = [f"x{i}" for i in range(D)]
    try:
        X, y = table(n, chunk, w, offset=40_000)
        parts = [
            dask.delayed(_frame)(xb, yb, cols)
            for xb, yb in zip(X.to_delayed().ravel(), y.to_delayed(), strict=True)
        ]
        meta = _frame(np.empty((0, D), np.float32), np.empty(0, np.int64), cols)
        frame = dd.from_delayed(parts, meta=meta, verify_meta=False)
        with harness.stopwatch() as sw_write:
            frame.to_parquet(src, write_index=False)
        df = dd.read_parquet(src)
        with harness.stopwatch() as sw_clean:
            scores = compute_influence(
                model, df[cols], df["label"], Xv, yv, batch_size=batch_size
            )
            info = write_cleaned(df, scores, dst, prune_ratio=0.1)
        kept = len(pd.read_parquet(dst, columns=["label"]))
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(dst, ignore_errors=True)
    return {
        "rows": n,
        "partitions": df.npartitions,
        "write_table_s": sw_write["seconds"],
        "score_and_clean_s": sw_clean["seconds"],
        "kept": kept,
        "expected_kept": n - int(math.floor(0.1 * n + 1e-9)),
        "threshold": info.threshold,
    }


# ------------------------------------------------------------------ report
def expected_scaling(per_block_s, per_task_s, client_s, blocks, cores):
    """Seconds on N single-threaded workers, one core each: T(N) = client +
    ceil(blocks / N) x (per block + per task)."""
    out = []
    t1 = client_s + blocks * (per_block_s + per_task_s)
    for nw in cores:
        t = client_s + math.ceil(blocks / nw) * (per_block_s + per_task_s)
        out.append(
            {"workers": nw, "seconds": t, "speedup": t1 / t, "efficiency": t1 / t / nw}
        )
    return out


def _mib(x):
    return "n/a" if x is None else f"{x:,.0f} MiB"


def report(res: dict, quick: bool) -> str:
    mem, ovh, ooc, exp = (
        res["in_memory"],
        res["overhead"],
        res["out_of_core"],
        res["expected"],
    )
    gen_cpu = res["generation_cpu_per_row"] * ooc["rows"]
    net_cpu = max(ooc["worker_cpu_s"] - gen_cpu, 1e-9)
    # the in-memory path on the out-of-core worker, just before and after
    ref_wall = ooc["in_memory_rows"] / np.mean(ooc["in_memory_wall_s"])
    ref_cpu = ooc["in_memory_rows"] / np.mean(ooc["in_memory_cpu_s"])
    ooc_wall = ooc["rows"] / ooc["wall_s"] / ooc["workers"]
    ratio_wall = ooc_wall / ref_wall
    ratio_all = ooc["rows"] / ooc["worker_cpu_s"] / ref_cpu
    ratio_net = ooc["rows"] / net_cpu / ref_cpu
    ratio_ovh = mem["wall_s"] / ovh["wall_s"]
    ratio_ovh_cpu = mem["cpu_s"] / ovh["worker_cpu_s"]
    title = "# bench_dask: scoring out of core on Dask"
    L = [title + (" (--quick)" if quick else ""), ""]
    L += [
        f"Commit {res['commit']}; {res['cpu']}, {os.cpu_count()} vCPUs, "
        f"{res['mem_gb']:.0f} GB of memory; {res['date']}; the whole run took "
        f"{res['total_s']:.0f} s. Model `nn.Linear({D}, 2)` in float32 "
        f"(cross-entropy) fitted on {res['fit_rows']:,} rows the workers made; "
        f'`method="ip"`, {res["val_rows"]:,} validation rows, '
        f"`batch_size={res['batch_size']:,}`, blocks of {res['chunk']:,} rows (a "
        "multiple of the batch size, so the blocks line up with the in-memory "
        "chunks); every row generated on a worker from its block's seed.",
        "",
        "**About one core of parallel throughput**: this machine has 2 vCPUs, "
        "shared with other benchmarks while this ran ('others': the share of all "
        "CPUs other processes used). Every rate is therefore compared with the "
        "in-memory path measured on a worker under the same load, close in time; "
        "rates per CPU-second are given too.",
        "",
        "## Out of core",
        "",
        "| rows | table (float32) | workers | wall | rows/s | rows per worker CPU-s "
        "| worker peak | client peak | exact 10% threshold |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {ooc['rows']:,} of {ooc['rows_requested']:,} | {ooc['table_gb']:.1f} GB "
        f"| {ooc['workers']} | {ooc['wall_s']:.0f} s "
        f"| {ooc['rows'] / ooc['wall_s']:,.0f} "
        f"| {ooc['rows'] / ooc['worker_cpu_s']:,.0f} "
        f"| {_mib(ooc['worker_peak_mb'])} | {_mib(ooc['client_peak_mb'])} "
        f"| {ooc['select_s']:.1f} s |",
        "",
        f"The workers scored every row and wrote every score to disk (one `.npy` "
        f"per block, 8 bytes a row) in {len(ooc['segments_s'])} segments of "
        f"{ooc['segment']:,} rows ({ooc['n_tasks']:,} tasks); the client computed "
        f"v and scattered the spec once ({ooc['client_s']:.2f} s). The exact k-th "
        f"smallest of the written scores (k = 10% of the rows, "
        f"`skinfluence.dask.kth_smallest`) is {ooc['threshold_10pct']:.6g}. "
        f"Worker CPU: {ooc['worker_cpu_s']:.0f} s, of which about {gen_cpu:.0f} s "
        "making the rows (measured by a generation-only pass). Peak memory is "
        "VmHWM: the client's includes the scheduler (it runs in the client "
        "process with a LocalCluster); the worker's is the largest of the workers.",
        "",
        "## Throughput against the in-memory path",
        "",
        "The in-memory path (`compute_influence` on NumPy arrays, one torch "
        "thread) runs on a worker too (`client.submit`), so that it meets the "
        "same load: in turns with Dask on the same rows, and just before and "
        "after the out-of-core run on its worker.",
        "",
        "| | rows | rows/s (wall) | rows per CPU-s |",
        "|---|---|---|---|",
        f"| in memory, in turns with the next row (best of {ovh['repeats']}) | {mem['rows']:,} "
        f"| {mem['rows_per_s']:,.0f} | {mem['rows_per_cpu_s']:,.0f} |",
        f"| Dask, one worker, the same rows held in it (best of {ovh['repeats']}) "
        f"| {ovh['rows']:,} "
        f"| {ovh['rows'] / ovh['wall_s']:,.0f} "
        f"| {ovh['rows'] / ovh['worker_cpu_s']:,.0f} |",
        f"| in memory, before and after the out-of-core run (mean) "
        f"| {ooc['in_memory_rows']:,} | {ref_wall:,.0f} | {ref_cpu:,.0f} |",
        f"| Dask out of core, rows made on the fly, per worker | {ooc['rows']:,} "
        f"| {ooc_wall:,.0f} | {ooc['rows'] / ooc['worker_cpu_s']:,.0f} |",
        f"| the same, less the CPU spent making the rows | | "
        f"| {ooc['rows'] / net_cpu:,.0f} |",
        "",
        f"Out-of-core throughput per core, as a share of the in-memory one: "
        f"**{ratio_wall:.0%} on the wall clock** (rows made on the fly included), "
        f"{ratio_all:.0%} per CPU-second, {ratio_net:.0%} per CPU-second with the "
        "making of the rows (which stands in for reading them from storage) "
        "taken out. Target: >= 70%.",
        "",
        f"Dask's overhead at one worker, on the same rows held in the worker: "
        f"{ovh['wall_s']:.2f} s against {mem['wall_s']:.2f} s in memory, so "
        f"{ratio_ovh:.0%} of the in-memory throughput ({ratio_ovh_cpu:.0%} per "
        f"CPU-second); the client's share (v, the scatter, the graph) "
        f"{ovh['client_s']:.2f} s. A task that does nothing costs "
        f"{1e3 * ovh['per_task_s']:.1f} ms of wall time here. The scores equal the "
        f"in-memory ones bit for bit: {ovh['equal_to_in_memory']}.",
        "",
        "## Scaling, measured on this machine",
        "",
        "About one core of parallel throughput here (see above): a second worker "
        "shares it, so wall-clock speedups beyond one worker are not to be read "
        "from this table; worker CPU-seconds show the work stays the same.",
        "",
        "| scaling | workers | rows | wall | rows/s | worker CPU-s | rows per CPU-s "
        "| others |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["scaling"]:
        L.append(
            f"| {r['kind']} | {r['workers']} | {r['rows']:,} | {r['wall_s']:.1f} s "
            f"| {r['rows'] / r['wall_s']:,.0f} | {r['worker_cpu_s']:.1f} "
            f"| {r['rows'] / r['worker_cpu_s']:,.0f} "
            f"| {harness.fmt_share(r['other_share'])} |"
        )
    L += [
        "",
        "The ensemble axis (`ip_ensemble`, K members: the client computes the K "
        "gradients once, each block makes K forward-mode passes):",
        "",
        "| K | workers | rows | wall | worker CPU-s | CPU-s / K |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["ensemble"]:
        L.append(
            f"| {r['members']} | {r['workers']} | {r['rows']:,} | {r['wall_s']:.1f} s "
            f"| {r['worker_cpu_s']:.1f} | {r['worker_cpu_s'] / r['members']:.2f} |"
        )
    L += [
        "",
        "## Expected scaling on an N-core cluster",
        "",
        f"For the {exp['rows']:,}-row table: {exp['blocks']:,} blocks, "
        f"{exp['per_block_s']:.3f} s of worker CPU per block (making and scoring "
        f"its rows and writing its scores, measured above), "
        f"{1e3 * exp['per_task_s']:.1f} ms of task overhead, {exp['client_s']:.2f} s "
        "on the client. With one single-threaded worker per core, "
        "T(N) = client + ceil(blocks / N) x (per block + overhead); the scheduler "
        "(a few thousand tasks a second) is far from a limit at one task per "
        "block-second.",
        "",
        "| workers (cores) | seconds | speedup | efficiency |",
        "|---|---|---|---|",
    ]
    for r in exp["table"]:
        L.append(
            f"| {r['workers']} | {r['seconds']:.1f} | {r['speedup']:.1f} "
            f"| {r['efficiency']:.0%} |"
        )
    pq = res["parquet"]
    L += [
        "",
        "## The cleaning workflow, on Parquet",
        "",
        f"{pq['rows']:,} generated rows written to Parquet by the workers "
        f"({pq['partitions']} partitions, {pq['write_table_s']:.1f} s); read back, "
        "scored, and the rows kept written with "
        f"`write_cleaned(prune_ratio=0.1)` in {pq['score_and_clean_s']:.1f} s: "
        f"{pq['kept']:,} rows kept, {pq['expected_kept']:,} expected.",
        "",
        "## Targets",
        "",
    ]
    peak = [ooc["worker_peak_mb"], ooc["client_peak_mb"]]
    peak_ok = None not in peak and max(peak) < 4096
    full = ooc["rows"] == ooc["rows_requested"]
    L += [
        f"- {ooc['rows_requested']:,} rows x {D} features "
        f"({ooc['rows_requested'] * D * 4 / 1e9:.0f} GB) scored out of core: "
        f"{'MET' if full else 'PARTIAL'} ({ooc['rows']:,} rows scored).",
        f"- Client and worker peak memory under 4 GB: "
        f"{'MET' if peak_ok else 'MISSED'} ({_mib(ooc['client_peak_mb'])} and "
        f"{_mib(ooc['worker_peak_mb'])}).",
        f"- At least 70% of the in-memory throughput per core: "
        f"{'MET' if ratio_wall >= 0.7 else 'MISSED'} ({ratio_wall:.0%} on the wall "
        f"clock; per CPU-second {ratio_all:.0%}, {ratio_net:.0%} without making "
        "the rows).",
        "",
    ]
    return "\n".join(L)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2M rows, under 2 minutes")
    ap.add_argument("--rows", type=int, help="rows of the out-of-core run")
    ap.add_argument("--chunk", type=int, help="rows per block (default 8 batches)")
    ap.add_argument("--batch-size", type=int, default=32_768)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--ooc-workers", type=int, default=1, help="workers of the out-of-core run"
    )
    ap.add_argument("--budget", type=float, help="seconds for the whole run")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    q = args.quick
    bs = args.batch_size
    n_ooc = args.rows or (2_000_000 if q else 100_000_000)
    chunk = args.chunk or bs * (4 if q else 8)
    budget = args.budget or (110.0 if q else 1200.0)
    deadline = time.monotonic() + budget - (10 if q else 40)
    t_start = time.perf_counter()
    where = tempfile.mkdtemp(prefix="bench_dask_")
    harness.log(f"bench_dask: {n_ooc:,} rows out of core, budget {budget:.0f} s")

    from skinfluence.models import as_torch_model

    w = np.random.default_rng(SEED).standard_normal(D).astype(np.float32) / 3
    res = {
        "commit": harness.git_commit(),
        "cpu": harness.cpu_name(),
        "mem_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "batch_size": bs,
        "chunk": chunk,
        "fit_rows": 50_000,
        "val_rows": 2_000,
    }
    # one torch thread here too: v is then summed as the in-memory path on a
    # single-threaded worker sums it, and the scores agree bit for bit
    harness.set_threads(1)
    harness.log(f"LocalCluster: {args.workers} single-threaded workers, 4 GB each")
    lc, client = cluster(args.workers, "4GB")
    try:
        addrs = sorted(client.scheduler_info()["workers"])
        # the sample to fit on and the validation rows: made by the workers
        X_fit, y_fit = on(client, addrs, table(50_000, 50_000, w, offset=50_000))
        X_val, y_val = on(client, addrs, table(2_000, 2_000, w, offset=60_000))
        model = as_torch_model(fit_model(X_fit, y_fit), loss=nn.CrossEntropyLoss())
        n_mem = 4 * chunk if q else 8 * chunk
        harness.log("in memory and Dask at one worker, taking turns")
        res.update(
            step_baseline(
                client,
                addrs[:1],
                model,
                X_val,
                y_val,
                w,
                n_mem,
                chunk,
                bs,
                3 if q else 5,
            )
        )
        mem, ovh = res["in_memory"], res["overhead"]
        harness.log(
            f"  in memory {mem['wall_s']:.2f} s, Dask {ovh['wall_s']:.2f} s, "
            f"equal: {ovh['equal_to_in_memory']}"
        )
        res["generation_cpu_per_row"] = generation_cpu_per_row(
            client, addrs[:1], w, 4 * chunk if q else 16 * chunk, chunk, 70_000
        )
        harness.log("scaling")
        res["scaling"] = step_scaling(
            client,
            addrs,
            model,
            X_val,
            y_val,
            w,
            8 * chunk if q else 32 * chunk,
            4 * chunk if q else 16 * chunk,
            chunk,
            bs,
        )
        harness.log("ensemble axis")
        res["ensemble"] = step_ensemble(
            client,
            addrs,
            model,
            X_val,
            y_val,
            w,
            4 * chunk if q else 8 * chunk,
            chunk,
            bs,
            [1, 4] if q else [1, 2, 4, 8],
        )
        harness.log("Parquet workflow")
        res["parquet"] = step_parquet(
            client,
            model,
            X_val,
            y_val,
            w,
            200_000 if q else 2_000_000,
            chunk,
            bs,
            where,
        )
        harness.log(f"out of core, {args.ooc_workers} worker(s)")
        segment = max(chunk, (n_ooc // 10) // chunk * chunk)
        res["out_of_core"] = step_out_of_core(
            client,
            addrs[: args.ooc_workers],
            model,
            X_val,
            y_val,
            w,
            n_ooc,
            chunk,
            bs,
            segment,
            deadline,
            where,
        )
    finally:
        client.close()
        lc.close()
        shutil.rmtree(where, ignore_errors=True)
    ooc = res["out_of_core"]
    per_block = ooc["worker_cpu_s"] / math.ceil(ooc["rows"] / chunk)
    per_task = res["overhead"]["per_task_s"]
    blocks = math.ceil(n_ooc / chunk)
    cores = [1, 2, 4, 8, 16, 32, 64, 128]
    res["expected"] = {
        "rows": n_ooc,
        "blocks": blocks,
        "per_block_s": per_block,
        "per_task_s": per_task,
        "client_s": ooc["client_s"],
        "table": expected_scaling(per_block, per_task, ooc["client_s"], blocks, cores),
    }
    res["total_s"] = time.perf_counter() - t_start
    text = report(res, q)
    print(text)
    if not args.no_write:
        stem = "dask_quick" if q else "dask"
        harness.RESULTS_DIR.mkdir(exist_ok=True)
        (harness.RESULTS_DIR / f"{stem}.md").write_text(text)
        (harness.RESULTS_DIR / f"{stem}.json").write_text(
            json.dumps(res, indent=1, default=float)
        )
        harness.log(f"wrote benchmarks/results/{stem}.md")


if __name__ == "__main__":
    main()
