"""The dask reports: tables from the CSVs of bench_dask.py."""

from __future__ import annotations

import math

import pandas as pd
from harness import md_table

from . import csv, frame_table, report, run_facts

DASK_COUNTS = {c: "Int64" for c in ("workers", "members", "rows", "n_tasks", "repeats")}
CORES = (1, 2, 4, 8, 16, 32, 64, 128)  # cluster sizes of the expected scaling


def _pairs(*pairs) -> list[str]:
    """A table of (quantity, value) rows, then a blank line."""
    return frame_table(pd.DataFrame(pairs, columns=["quantity", "value"])) + [""]


def _fmt_rows(rows: list, spec: str) -> list[list]:
    """``[label, x, ...]`` rows with each x formatted by ``spec`` ("" if missing)."""
    return [[r, *("" if pd.isna(x) else format(x, spec) for x in xs)]
            for r, *xs in rows]


def _dask(stem: str) -> list[str]:
    """``<stem>.md`` from ``<stem>.csv`` (timed runs) and ``<stem>_facts.csv``."""

    from types import SimpleNamespace

    runs, facts = csv(stem).astype(DASK_COUNTS), csv(f"{stem}_facts")
    f = SimpleNamespace(**{c: facts[c].iloc[0] for c in facts})  # one row, typed
    first = {s: g.iloc[0] for s, g in runs.groupby("step")}
    ooc, mem, dsk = first["out_of_core"], first["in_memory"], first["dask_one_worker"]
    gen, tiny, pq = first["generation"], first["empty_tasks"], first["parquet_clean"]
    refs = runs[runs.step.isin(["in_memory_before", "in_memory_after"])]
    segs = runs[runs.step == "out_of_core_segment"]
    per_task = tiny.wall_s / tiny.n_tasks
    gen_cpu = gen.cpu_s / gen.rows * ooc.rows  # making the out-of-core rows
    ref_wall = refs.rows.mean() / refs.wall_s.mean()
    ref_cpu = refs.rows.mean() / refs.cpu_s.mean()
    wall, cpu = ooc.rows / ooc.wall_s / ooc.workers, ooc.rows / ooc.cpu_s
    net = ooc.rows / max(ooc.cpu_s - gen_cpu, 1e-9)
    quick = " (--quick)" if stem.endswith("_quick") else ""
    L = [f"# bench_dask: scoring out of core on Dask{quick}", "", *run_facts(stem), ""]
    L += _pairs(
        ("model; method", 'nn.Linear(100, 2), float32, cross-entropy; method="ip"'),
        ("rows it was fitted on; validation rows", f"{f.fit_rows:,}; {f.val_rows:,}"),
        ("batch_size; rows per block", f"{f.batch_size:,}; {f.chunk:,}"),
        ("memory; the whole run", f"{f.memory_gb:.0f} GB; {f.total_s:.0f} s"),
    )
    L += ["## Out of core", ""] + _pairs(
        ("rows scored", f"{ooc.rows:,} of {f.rows_requested:,}"),
        ("table (float32)", f"{ooc.rows * 400 / 1e9:.1f} GB"),
        ("workers; wall", f"{ooc.workers}; {ooc.wall_s:.0f} s"),
        ("rows/s; rows per worker CPU-s", f"{ooc.rows / ooc.wall_s:,.0f}; {cpu:,.0f}"),
        ("worker peak; client peak (VmHWM)",
         f"{f.worker_peak_mb:,.0f} MiB; {f.client_peak_mb:,.0f} MiB"),
        ("client: v, the spec scattered, the graph", f"{f.client_s:.2f} s"),
        ("segments written; tasks",
         f"{len(segs)} of up to {segs.rows.max():,} rows; {ooc.n_tasks:,}"),
        ("worker CPU; of it making the rows", f"{ooc.cpu_s:.0f} s; {gen_cpu:.0f} s"),
        ("exact 10% threshold (kth_smallest)", f"{f.threshold_10pct:.6g}"),
        ("time of that selection", f"{first['kth_smallest'].wall_s:.1f} s"),
    )
    rates = [
        (f"in memory, in turns with Dask (best of {mem.repeats})",
         mem.rows, mem.rows / mem.wall_s, mem.rows / mem.cpu_s),
        (f"Dask, one worker, the same rows held in it (best of {dsk.repeats})",
         dsk.rows, dsk.rows / dsk.wall_s, dsk.rows / dsk.cpu_s),
        ("in memory, before and after the out-of-core run (mean)",
         refs.rows.mean(), ref_wall, ref_cpu),
        ("Dask out of core, rows made on the fly, per worker", ooc.rows, wall, cpu),
        ("the same, less the CPU spent making the rows", None, None, net),
    ]
    shares = [
        ("Dask out of core / in memory before and after",
         wall / ref_wall, cpu / ref_cpu, net / ref_cpu),
        ("Dask at one worker / in memory in turns",
         mem.wall_s / dsk.wall_s, mem.cpu_s / dsk.cpu_s, None),
    ]
    L += ["## Throughput against the in-memory path", ""]
    L += md_table(["run", "rows", "rows/s (wall)", "rows per CPU-s"],
                  _fmt_rows(rates, ",.0f"), "lrrr") + [""]
    L += md_table(["share of the in-memory throughput", "wall clock", "per CPU-s",
                   "per CPU-s, less making the rows"], _fmt_rows(shares, ".0%"), "lrrr")
    L += [""] + _pairs(
        ("Dask at one worker; in memory (wall)",
         f"{dsk.wall_s:.2f} s; {mem.wall_s:.2f} s"),
        ("client's share at one worker", f"{f.one_worker_client_s:.2f} s"),
        ("a task that does nothing", f"{1e3 * per_task:.1f} ms"),
        ("largest difference from the in-memory scores", f"{f.max_abs_difference:.3g}"),
    )
    sc, ens = runs[runs.step.isin(["strong", "weak"])], runs[runs.step == "ensemble"]
    L += ["## Scaling, measured on this machine", ""]
    L += frame_table(
        pd.DataFrame({"scaling": sc.step, "workers": sc.workers, "rows": sc.rows,
                      "wall (s)": sc.wall_s, "rows/s": sc.rows / sc.wall_s,
                      "worker CPU-s": sc.cpu_s, "rows per CPU-s": sc.rows / sc.cpu_s,
                      "others": sc.other_share}),
        {"rows": ",", "wall (s)": ".1f", "rows/s": ",.0f", "worker CPU-s": ".1f",
         "rows per CPU-s": ",.0f", "others": ".0%"},
    )
    L += ["", "The ensemble axis (`ip_ensemble`, K members):", ""]
    L += frame_table(
        pd.DataFrame({"K": ens.members, "workers": ens.workers, "rows": ens.rows,
                      "wall (s)": ens.wall_s, "worker CPU-s": ens.cpu_s,
                      "CPU-s / K": ens.cpu_s / ens.members}),
        {"rows": ",", "wall (s)": ".1f", "worker CPU-s": ".1f", "CPU-s / K": ".2f"},
    )
    # T(N) = client + ceil(blocks / N) x (per block + per task), by the measured costs
    blocks = math.ceil(f.rows_requested / f.chunk)
    per_block = ooc.cpu_s / math.ceil(ooc.rows / f.chunk)
    t = [f.client_s + math.ceil(blocks / n) * (per_block + per_task) for n in CORES]
    L += ["", "## Expected scaling on an N-core cluster", ""] + _pairs(
        ("rows; blocks", f"{f.rows_requested:,}; {blocks:,}"),
        ("worker CPU per block (make, score, write)", f"{per_block:.3f} s"),
        ("task overhead; client", f"{1e3 * per_task:.1f} ms; {f.client_s:.2f} s"),
    )
    expected = [[n, f"{x:.1f}", f"{t[0] / x:.1f}", f"{t[0] / x / n:.0%}"]
                for n, x in zip(CORES, t, strict=True)]
    L += md_table(["workers (cores)", "seconds", "speedup", "efficiency"],
                  expected, "rrrr")
    kept = pq.rows - math.floor(0.1 * pq.rows + 1e-9)  # the budget floor(0.1 n)
    L += ["", "## The cleaning workflow, on Parquet", ""] + _pairs(
        ("rows; partitions", f"{pq.rows:,}; {f.parquet_partitions}"),
        ("the table written by the workers", f"{first['parquet_write'].wall_s:.1f} s"),
        ("read back, scored, write_cleaned(prune_ratio=0.1)", f"{pq.wall_s:.1f} s"),
        ("rows kept; rows - floor(0.1 rows)", f"{f.parquet_kept:,}; {kept:,}"),
    )
    return L[:-1]


@report("dask")
def dask_md() -> list[str]:
    return _dask("dask")


@report("dask_quick")
def dask_quick_md() -> list[str]:
    return _dask("dask_quick")
