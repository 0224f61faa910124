"""Scoring out of core on Dask: throughput, peak memory, scaling (issue 11).

``python benchmarks/bench_dask.py`` scores 100 million generated rows x 100
float32 features (40 GB) with ``method="ip"`` on a ``LocalCluster``
(``--quick``: 2 million) and writes ``results/dask.csv`` (one row per timed
run, named by ``step``) and ``results/dask_facts.csv`` (one row: settings,
peaks, threshold, checks); ``--quick``: ``dask_quick*``. ``report.py dask``
renders them; the steps and the targets: benchmarks/README.md. Public API
only (``skinfluence.compute_influence``, ``.dask``, ``.models``, ``.methods``).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import dask.dataframe as dd
import harness
import numpy as np
import pandas as pd
import torch
from dask.base import tokenize
from distributed import Client, LocalCluster, get_task_stream, wait
from torch import nn

from skinfluence import compute_influence
from skinfluence.dask import kth_smallest, write_cleaned
from skinfluence.methods import IPEnsemble
from skinfluence.models import as_torch_model

D = 100  # features
POOL = 4096  # distinct rows per block
SEED = 0
FIT, VAL = 50_000, 2_000  # rows of the model's training sample, validation rows
COUNTS = ["workers", "members", "rows", "n_tasks", "repeats"]  # integers, or empty
COLUMNS = ["step", *COUNTS[:3], "wall_s", "cpu_s", "other_share", *COUNTS[3:]]


# ----------------------------------------------------------- generated rows
def _block(seed, offset, block_info):
    """The block's generator (seeded ``(seed, offset + block)``), pool, rows."""
    info = block_info[None]
    rng = np.random.default_rng([seed, offset + info["chunk-location"][0]])
    pool = rng.standard_normal((POOL, D), dtype=np.float32)
    return rng, pool, info["chunk-shape"][0]


def gen_X(seed, offset, block_info=None):
    """The rows of one block: drawn from its pool with replacement."""
    rng, pool, rows = _block(seed, offset, block_info)
    return pool[rng.integers(0, POOL, rows)]


def gen_y(seed, offset, w, block_info=None):
    """Their labels: a planted logistic model, from the same seed."""
    rng, pool, rows = _block(seed, offset, block_info)
    idx = rng.integers(0, POOL, rows)
    noisy = pool @ w + rng.logistic(size=POOL).astype(np.float32)
    return (noisy > 0).astype(np.int64)[idx]


def _chunks(n: int, chunk: int) -> tuple:
    full, rest = divmod(n, chunk)
    return (chunk,) * full + ((rest,) if rest else ())


def table(n: int, chunk: int, w: np.ndarray, offset: int):
    """Lazy ``(X, y)`` of ``n`` generated rows in blocks of ``chunk``."""
    rows, tok = _chunks(n, chunk), tokenize(n, chunk, SEED, offset)
    X = da.map_blocks(gen_X, SEED, offset, dtype=np.float32, chunks=(rows, (D,)),
                      meta=np.empty((0, D), np.float32), name=f"genx-{tok}")
    y = da.map_blocks(gen_y, SEED, offset, w, dtype=np.int64, chunks=(rows,),
                      meta=np.empty((0,), np.int64), name=f"geny-{tok}")
    return X, y


def in_memory_rows(n: int, chunk: int, w):
    """The same rows as :func:`table`, made here (for the in-memory path)."""
    X, y, start = np.empty((n, D), np.float32), np.empty(n, np.int64), 0
    for i, r in enumerate(_chunks(n, chunk)):
        info = {None: {"chunk-location": (i, 0), "chunk-shape": (r, D)}}
        X[start : start + r] = gen_X(SEED, 0, info)
        y[start : start + r], start = gen_y(SEED, 0, w, info), start + r
    return X, y


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
def cluster(n_workers: int):
    """A LocalCluster of single-threaded worker processes (4 GB each), warmed up."""
    # no spilling to disk: the in-memory reference run shares a worker with
    # rows persisted there, and spilling them would slow the Dask run down
    dask.config.set({"distributed.worker.memory.target": False,
                     "distributed.worker.memory.spill": False})
    lc = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      memory_limit="4GB", dashboard_address=None)
    client = Client(lc)
    client.run(_warm)  # imports, outside the timings
    return lc, client


def _warm():
    import skinfluence.dask  # noqa: F401

    # dask's DataFrame code warns about the block layout of a 101-column frame
    warnings.filterwarnings("ignore", category=pd.errors.PerformanceWarning)


def _save_block(scores, where, block_info=None):
    """Write one block of scores to ``where/<block>.npy`` (on its worker)."""
    i = block_info[0]["chunk-location"][0]
    Path(where).mkdir(parents=True, exist_ok=True)
    np.save(Path(where) / f"{i:06d}.npy", scores)
    return np.zeros(1)


def _load_block(where, block_info=None):
    return np.load(Path(where) / f"{block_info[None]['chunk-location'][0]:06d}.npy")


def _in_memory_run(model, Xv, yv, w, n, chunk, batch_size):
    """The in-memory path: rows made here, one torch thread; (wall, CPU-s, scores)."""
    X, y = in_memory_rows(n, chunk, w)
    torch.set_num_threads(1)
    c0, t0 = harness.own_cpu_s(), time.perf_counter()
    scores = compute_influence(model, X, y, Xv, yv, batch_size=batch_size)
    return time.perf_counter() - t0, harness.own_cpu_s() - c0, scores


class Bench:
    """What every step uses; ``runs`` and ``facts``: what they measured."""

    def __init__(self, client, model, Xv, yv, w, chunk: int, bs: int, where: str):
        self.client, self.addrs = client, sorted(client.scheduler_info()["workers"])
        self.model, self.Xv, self.yv, self.w = model, Xv, yv, w
        self.chunk, self.bs, self.where = chunk, bs, where
        self.runs, self.facts = [], {"batch_size": bs, "chunk": chunk}

    def add(self, step: str, **values) -> None:
        self.runs.append({"step": step, **values})
        got = ", ".join(f"{k} {v:,.7g}" for k, v in values.items() if v is not None)
        harness.log(f"  {step}: {got}")

    def scores(self, X, y, **kwargs):
        return compute_influence(self.model, X, y, self.Xv, self.yv,
                                 batch_size=self.bs, **kwargs)

    def on(self, workers, collection):
        """Compute ``collection`` on ``workers`` only (the others stay idle)."""
        return self.client.compute(collection, workers=workers,
                                   allow_other_workers=False, sync=True)

    def cpu_s(self, workers=None) -> float:
        """CPU-seconds the worker processes have used, summed."""
        return sum(self.client.run(harness.own_cpu_s, workers=workers).values())

    def in_memory(self, n: int):
        """:func:`_in_memory_run` on the first worker (so it meets the same load)."""
        args = (self.model, self.Xv, self.yv, self.w, n, self.chunk, self.bs)
        one = self.addrs[:1]
        return self.client.submit(_in_memory_run, *args, workers=one, pure=False).result()

    def scored(self, fn, repeats: int = 1) -> dict:
        """``fn()`` ``repeats`` times: the best wall, the least worker CPU-s."""
        walls, cpus, others = [], [], []
        for _ in range(repeats):
            cpu0 = self.cpu_s()
            with get_task_stream(self.client) as ts:
                t = harness.timed(fn)
            cpus.append(self.cpu_s() - cpu0)
            walls.append(t.best)
            others.append(t.other_at_best)
        best = int(np.argmin(walls))
        return {"wall_s": walls[best], "cpu_s": min(cpus), "other_share": others[best],
                "n_tasks": len(ts.data), "repeats": repeats}

    def scored_sum(self, workers, X, y, **kwargs):
        return lambda: float(self.on(workers, self.scores(X, y, **kwargs).sum()))


# --------------------------------------------------------------- the steps
def step_baseline(b: Bench, n: int, repeats: int, n_gen: int) -> None:
    """In memory and Dask at one worker, on the same rows, taking turns; the
    cost of an empty task; the worker time spent making ``n_gen`` rows."""
    one = b.addrs[:1]
    rows = list(table(n, b.chunk, b.w, 0))
    X, y = b.client.persist(rows, workers=one, allow_other_workers=False)
    wait([X, y])
    mem, dsk = [], []
    for _ in range(repeats):
        wall, cpu, ref = b.in_memory(n)
        mem.append((wall, cpu))
        cpu0, t0 = b.cpu_s(one), time.perf_counter()
        s = b.scores(X, y)
        build = time.perf_counter() - t0  # v, the spec scattered, the graph
        got = b.on(one, s)
        dsk.append((time.perf_counter() - t0, b.cpu_s(one) - cpu0, build))
    # the cost of a task that does nothing: 500 zeros and 500 "+ 1", one worker
    tiny = da.zeros(500, chunks=1).map_blocks(lambda a: a + 1)
    t = harness.timed(lambda: b.on(one, tiny), repeats=2)
    b.add("in_memory", workers=1, rows=n, wall_s=min(mem)[0],
          cpu_s=min(c for _, c in mem), repeats=repeats)
    b.add("dask_one_worker", workers=1, rows=n, wall_s=min(dsk)[0],
          cpu_s=min(d[1] for d in dsk), repeats=repeats)
    b.add("empty_tasks", workers=1, wall_s=t.best, n_tasks=1000, repeats=2)
    b.facts |= {"one_worker_client_s": min(dsk)[2],
                "max_abs_difference": float(np.abs(got - ref).max())}
    X, y = table(n_gen, b.chunk, b.w, 70_000)  # X and y made, not scored
    r = b.scored(lambda: b.on(one, [X.sum(), y.sum()]), repeats=2)
    b.add("generation", workers=1, rows=n_gen, **r)


def step_scaling(b: Bench, n_strong: int, n_weak: int) -> None:
    for nw in range(1, len(b.addrs) + 1):
        for kind, n in (("strong", n_strong), ("weak", n_weak * nw)):
            X, y = table(n, b.chunk, b.w, 10_000)
            score = b.scored_sum(b.addrs[:nw], X, y)
            b.add(kind, workers=nw, rows=n, **b.scored(score))


def step_ensemble(b: Bench, n: int, members: list) -> None:
    X, y = table(n, b.chunk, b.w, 20_000)
    for k in members:
        method = IPEnsemble(n_members=k, max_dropout=0.01)
        score = b.scored_sum(b.addrs, X, y, method=method, random_state=0)
        b.add("ensemble", workers=len(b.addrs), members=k, rows=n, **b.scored(score))


def _frame(X, y, cols):
    return pd.DataFrame(X, columns=cols).assign(label=y)


def step_parquet(b: Bench, n: int) -> None:
    """Table to Parquet (by the workers), read back, scored, cleaned to Parquet."""
    src, dst = Path(b.where) / "table", Path(b.where) / "clean"
    cols = [f"x{i}" for i in range(D)]
    try:
        X, y = table(n, b.chunk, b.w, 40_000)
        parts = [dask.delayed(_frame)(xb, yb, cols)
                 for xb, yb in zip(X.to_delayed().ravel(), y.to_delayed(), strict=True)]
        meta = _frame(np.empty((0, D), np.float32), np.empty(0, np.int64), cols)
        frame = dd.from_delayed(parts, meta=meta, verify_meta=False)
        with harness.stopwatch() as sw_write:
            frame.to_parquet(src, write_index=False)
        df = dd.read_parquet(src)
        with harness.stopwatch() as sw_clean:
            scores = b.scores(df[cols], df["label"])
            info = write_cleaned(df, scores, dst, prune_ratio=0.1)
        kept = len(pd.read_parquet(dst, columns=["label"]))
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(dst, ignore_errors=True)
    b.add("parquet_write", rows=n, wall_s=sw_write["seconds"])
    b.add("parquet_clean", rows=n, wall_s=sw_clean["seconds"])
    b.facts |= {"parquet_partitions": df.npartitions, "parquet_kept": kept,
                "parquet_threshold": info.threshold}


def step_out_of_core(b: Bench, workers: list, n: int, segment: int, deadline: float):
    """Every score of ``n`` rows to disk, segment by segment, until the deadline."""
    gc.collect()
    n_ref = 8 * b.chunk

    def reference(step):
        wall, cpu, _ = b.in_memory(n_ref)
        b.add(step, workers=1, rows=n_ref, wall_s=wall, cpu_s=cpu)

    reference("in_memory_before")
    out_dir = Path(b.where) / "scores"
    try:
        X, y = table(n, b.chunk, b.w, 30_000)
        harness.reset_peak()
        b.client.run(harness.reset_peak)
        cpu0, t0 = b.cpu_s(), time.perf_counter()
        scores = b.scores(X, y)
        client_s = time.perf_counter() - t0  # v, the spec scattered, the graph
        done, segs = 0, []
        while done < n:
            stop, seg_t0 = min(n, done + segment), time.perf_counter()
            where = str(out_dir / str(len(segs)))
            save = scores[done:stop].map_blocks(_save_block, where, chunks=(1,), dtype=float)
            with get_task_stream(b.client) as ts:
                b.on(workers, save.sum())
            segs.append({"step": "out_of_core_segment", "workers": len(workers),
                         "rows": stop - done, "wall_s": time.perf_counter() - seg_t0,
                         "n_tasks": len(ts.data)})
            done = stop
            harness.log(f"  {done:,} rows scored, {time.perf_counter() - t0:.0f} s")
            longest = max(s["wall_s"] for s in segs)
            if done < n and deadline - time.monotonic() < 1.2 * longest:
                harness.log("  stopping: the time budget is spent")
                break
        b.add("out_of_core", workers=len(workers), rows=done,
              wall_s=time.perf_counter() - t0, cpu_s=b.cpu_s() - cpu0,
              n_tasks=sum(s["n_tasks"] for s in segs))
        b.facts |= {"rows_requested": n, "client_s": client_s,
                    "worker_peak_mb": max(b.client.run(harness.hwm_mb).values()),
                    "client_peak_mb": harness.hwm_mb()}
        b.runs += segs
        reference("in_memory_after")
        stored = da.concatenate([
            da.map_blocks(_load_block, str(out_dir / str(i)), dtype=float,
                          chunks=(_chunks(s["rows"], b.chunk),))
            for i, s in enumerate(segs)
        ])
        k = int(math.floor(0.1 * done))
        with harness.stopwatch() as sw:
            b.facts["threshold_10pct"] = kth_smallest(stored, k) if k else float("nan")
        b.add("kth_smallest", rows=done, wall_s=sw["seconds"])
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


# --------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2M rows, under 2 minutes")
    ap.add_argument("--rows", type=int, help="rows of the out-of-core run")
    ap.add_argument("--chunk", type=int, help="rows per block (default 8 batches)")
    ap.add_argument("--batch-size", type=int, default=32_768)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--ooc-workers", type=int, default=1,
                    help="workers of the out-of-core run")
    ap.add_argument("--budget", type=float, help="seconds for the whole run")
    ap.add_argument("--out", help="results/<out>.csv (default dask, or dask_quick)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    q, bs = args.quick, args.batch_size
    n_ooc = args.rows or (2_000_000 if q else 100_000_000)
    chunk = args.chunk or bs * (4 if q else 8)  # a multiple of the batch size
    budget = args.budget or (110.0 if q else 1200.0)
    deadline = time.monotonic() + budget - (10 if q else 40)
    t_start = time.perf_counter()
    harness.log(f"bench_dask: {n_ooc:,} rows out of core, budget {budget:.0f} s, "
                f"{args.workers} single-threaded workers (4 GB each)")
    w = np.random.default_rng(SEED).standard_normal(D).astype(np.float32) / 3
    # one torch thread here too: v is then summed as the in-memory path on a
    # single-threaded worker sums it, and the scores agree bit for bit
    harness.set_threads(1)
    lc, client = cluster(args.workers)
    where = tempfile.mkdtemp(prefix="bench_dask_")
    try:
        # the sample to fit on and the validation rows: made by the workers
        fit, val = table(FIT, FIT, w, 50_000), table(VAL, VAL, w, 60_000)
        (X_fit, y_fit), (Xv, yv) = client.compute([fit, val], sync=True)
        model = as_torch_model(fit_model(X_fit, y_fit), loss=nn.CrossEntropyLoss())
        b = Bench(client, model, Xv, yv, w, chunk, bs, where)
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        b.facts |= {"fit_rows": FIT, "val_rows": VAL, "memory_gb": mem}

        def blocks(quick: int, full: int) -> int:
            return (quick if q else full) * chunk

        step_baseline(b, blocks(4, 8), 3 if q else 5, blocks(4, 16))
        step_scaling(b, blocks(8, 32), blocks(4, 16))
        step_ensemble(b, blocks(4, 8), [1, 4] if q else [1, 2, 4, 8])
        step_parquet(b, min(2_000_000, n_ooc // 10))  # 200,000 with --quick
        segment = max(chunk, (n_ooc // 10) // chunk * chunk)
        step_out_of_core(b, b.addrs[: args.ooc_workers], n_ooc, segment, deadline)
    finally:
        client.close()
        lc.close()
        shutil.rmtree(where, ignore_errors=True)
    b.facts["total_s"] = time.perf_counter() - t_start
    runs = pd.DataFrame(b.runs, columns=COLUMNS).astype({c: "Int64" for c in COUNTS})
    facts = pd.DataFrame([b.facts])  # one row
    print(runs.to_string(), facts.to_string(), sep="\n")
    if not args.no_write:
        out = args.out or ("dask_quick" if q else "dask")
        harness.write_csv(out, runs)
        harness.write_csv(f"{out}_facts", facts)


if __name__ == "__main__":
    main()
