"""Render the benchmark tables (and plots) from the CSVs in ``results/``.

Run from the repository root::

    python benchmarks/report.py            # every report
    python benchmarks/report.py fairness   # some of them

Each ``bench_*.py`` script measures and writes ``results/<name>.csv`` (with
``results/<name>.run.json``, the run's date, command, commit and machine:
``harness.write_csv``); this script turns them into ``results/<name>.md``,
which the documentation includes. Tables only: the targets and the verdicts
on them live in ``benchmarks/README.md`` and the project README.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd
from harness import RESULTS_DIR, md_table, write_result

REPORTS = {}  # name -> function returning the Markdown lines of results/<name>.md


def report(name: str):
    """Register the renderer of ``results/<name>.md``."""

    def register(fn):
        REPORTS[name] = fn
        return fn

    return register


def csv(name: str) -> pd.DataFrame:
    """``results/<name>.csv``."""
    return pd.read_csv(RESULTS_DIR / f"{name}.csv")


def run_facts(name: str) -> list[str]:
    """The run's header lines (``results/<name>.run.json``), if recorded."""
    path = RESULTS_DIR / f"{name}.run.json"
    return json.loads(path.read_text())["header"] if path.exists() else []


def frame_table(frame: pd.DataFrame, formats: dict | None = None) -> list[str]:
    """A Markdown table of ``frame``; ``formats`` maps a column to a format spec."""
    formats = formats or {}
    rows = [
        [format(v, formats[c]) if c in formats and pd.notna(v) else v for c, v in r.items()]
        for _, r in frame.iterrows()
    ]
    align = "".join("r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame)
    return md_table(list(frame.columns), rows, align)


# ---- section: speed (bench_speed.py, bench_memory_cache.py) ----
# ---- end: speed ----

# ---- section: counterfactual (bench_counterfactual*.py) ----
CF_LABELS = {"adult": "Adult", "compas": "COMPAS", "logreg": "LogReg", "mlp": "MLP"}
CF_CSVS = ("methods", "ceiling", "retrain", "loo", "trak_timing", "curvature")
CF_KEY = ["dataset", "model", "objective", "method"]
CF_DATTRI_TRAK = "dattri TRAK (1 checkpoint)"


@report("counterfactual")
def counterfactual_md(stem: str = "counterfactual") -> list[str]:
    """``results/<stem>_*.csv`` of bench_counterfactual.py and ..._cost.py."""
    methods, ceiling = csv(f"{stem}_methods"), csv(f"{stem}_ceiling")
    ours = (methods.family == "skinfluence") & (methods.method != "random")
    trak = methods.method.str.startswith("trak")
    L = ["# Counterfactual benchmark: influence against retraining", ""]
    L += _cf_facts(stem) + ["How to read the tables: `benchmarks/README.md`.", ""]
    L += ["## Linear datamodeling score", ""] + _cf_lds(methods, ceiling)
    L += ["", "## Best LDS: skinfluence against dattri", ""]
    L += frame_table(*_cf_best(methods, ours, methods.family == "dattri"))
    L += ["", "### TRAK", ""]
    L += frame_table(*_cf_best(methods, trak, methods.method == CF_DATTRI_TRAK))
    L += ["", "## Seconds to score", ""]
    L += _cf_table(methods, _cf_wide(methods, _cf_seconds))
    if (RESULTS_DIR / f"{stem}_trak_timing.csv").exists():
        L += ["", "### TRAK: ours against dattri's", ""]
        L += _cf_trak(csv(f"{stem}_trak_timing"))
    L += ["", "## Leave-k-out"] + _cf_loo(csv(f"{stem}_loo"), methods)
    if (RESULTS_DIR / f"{stem}_curvature.csv").exists():
        L += ["", "## Influence function curvature on the Adult MLP", ""]
        L += _cf_curvature(csv(f"{stem}_curvature"))
    L += ["", "## Warnings and errors recorded while scoring", ""]
    return L + _cf_notes(methods)


def _cf_facts(stem) -> list[str]:
    """The run facts of the CSVs, each distinct block once."""
    blocks = {}
    for name in CF_CSVS:
        if lines := run_facts(f"{stem}_{name}"):
            blocks.setdefault(tuple(lines), []).append(f"`{stem}_{name}.csv`")
    out = []
    for lines, files in blocks.items():
        out += ([f"Run of {', '.join(files)}:", ""] if len(blocks) > 1 else []) + [
            *lines,
            "",
        ]
    return out


def _cf_num(x, digits: int = 3) -> str:
    return "—" if pd.isna(x) else f"{x:.{digits}f}"


def _cf_cells(methods) -> list[tuple]:
    """The (dataset, model, objective) columns: LogReg then MLP, COMPAS then Adult."""
    have = set(zip(methods.dataset, methods.model, strict=True))
    return [
        (d, m, o) for m in ("logreg", "mlp") for d in ("compas", "adult")
        if (d, m) in have for o in ("utility", "fairness")
    ]  # fmt: skip


def _cf_methods(methods) -> list[str]:
    """Method labels: skinfluence's, the peers', then the baselines, each as run."""
    family = dict(zip(methods.method, methods.family, strict=True))
    labels = list(dict.fromkeys(methods.method))
    baseline = ("self_influence", "loss", "random")
    group = {x: 2 if x in baseline else int(family[x] != "skinfluence") for x in labels}
    return sorted(labels, key=lambda x: (group[x], labels.index(x)))


def _cf_table(methods, rows) -> list[str]:
    """A table with a column per (dataset, model, objective)."""
    cells = _cf_cells(methods)
    header = [f"{CF_LABELS[d]} {CF_LABELS[m]} {o}" for d, m, o in cells]
    return md_table(["method", *header], rows, "l" + "r" * len(cells))


def _cf_wide(methods, cell) -> list[list]:
    """A row per method, a column per (dataset, model, objective): ``cell(row, c)``."""
    index = methods.set_index(CF_KEY)
    return [
        [label] + [cell(index.loc[(*c, label)], c) if (*c, label) in index.index else ""
                   for c in _cf_cells(methods)]
        for label in _cf_methods(methods)
    ]  # fmt: skip


def _cf_lds(methods, ceiling) -> list[str]:
    """LDS per method and column, the column's best (random excluded) in bold."""
    best = methods[methods.method != "random"].groupby(CF_KEY[:3]).lds.max()

    def cell(r, c):
        return f"**{r.lds:.3f}**" if r.lds == best[c] else _cf_num(r.lds)

    rows = _cf_wide(methods, cell)
    noise = ceiling.set_index(CF_KEY[:3]).ceiling
    rows.append(
        ["*seed-noise ceiling (approx.)*"]
        + [f"*{noise[c]:.2f}*" for c in _cf_cells(methods)]
    )
    return _cf_table(methods, rows)


def _cf_seconds(r, c) -> str:
    if pd.notna(r.seconds):
        return f"{r.seconds:.3f}"
    return "(shared)" if pd.isna(r.notes) or not r.notes else "failed"


def _cf_best(methods, ours, theirs) -> tuple[pd.DataFrame, dict]:
    """Per column, the best LDS of the ``ours`` rows and of the ``theirs`` rows."""
    rows = []
    for c in _cf_cells(methods):
        here = (methods[CF_KEY[:3]] == list(c)).all(axis=1) & methods.lds.notna()
        a, b = methods[here & ours], methods[here & theirs]
        if len(a) and len(b):
            a, b = a.loc[a.lds.idxmax()], b.loc[b.lds.idxmax()]
            rows.append([" ".join(CF_LABELS.get(x, x) for x in c), a.method, a.lds,
                         b.method, b.lds, f"{a.lds - b.lds:+.2g}"])  # fmt: skip
    cols = [
        "cell",
        "skinfluence (best)",
        "LDS",
        "dattri (best)",
        "dattri LDS",
        "difference",
    ]
    return pd.DataFrame(rows, columns=cols), {"LDS": ".4f", "dattri LDS": ".4f"}


def _cf_trak(trak) -> list[str]:
    """The latest run's timings (a ratio is taken within one run only)."""
    rows = [
        [r.case, r.objective, str(int(r.proj_dim)), f"{r.ours_s:.3f}",
         f"{r.dattri_s:.3f}", f"{r.dattri_s / r.ours_s:.1f}x", _cf_num(r.floor_s),
         f"{r.dattri_s / r.floor_s:.1f}x" if r.floor_s > 0 else "—",
         r.ours_runs, r.dattri_runs,
         "n/a" if pd.isna(r.other_load) else f"{100 * r.other_load:.0f}%", r.load_avg]
        for r in trak[trak.run == trak.run.iloc[-1]].itertuples()
    ]  # fmt: skip
    header = ["case", "objective", "proj_dim", "ours (s)", "dattri (s)",
              "dattri / ours", "projection floor (s)", "dattri / floor",
              "ours, all runs", "dattri, all runs", "other load",
              "load average"]  # fmt: skip
    return md_table(header, rows, "lllrrrrr")


def _cf_loo(loo, methods) -> list[str]:
    """Mean change of J over the seeds; the influence functions' predicted change."""
    loo = loo.assign(delta=loo.j_removed - loo.j_full)
    agg = loo.groupby([*CF_KEY, "direction"]).agg(
        delta=("delta", "mean"), predicted=("predicted", "first"), k=("k", "first")
    )
    cols = [(o, dr) for o in ("utility", "fairness") for dr in ("harmful", "helpful")]
    out = []
    for d, m in dict.fromkeys(c[:2] for c in _cf_cells(methods)):
        sel, rows = agg.loc[(d, m)], []
        for label in _cf_methods(methods):
            if label not in sel.index.get_level_values("method"):
                continue
            rows.append([label])
            for o, dr in cols:
                r = sel.loc[(o, label, dr)] if (o, label, dr) in sel.index else None
                cell = "" if r is None else f"{r.delta:+.4f}"
                if r is not None and label.startswith(
                    ("influence_function", "dattri CG")
                ):
                    cell += f" (pred. {r.predicted:+.4f})"
                rows[-1].append(cell)
        out += [
            "",
            f"### {CF_LABELS[d]}, {CF_LABELS[m]} (k = {int(sel.k.iloc[0])})",
            "",
        ]
        out += md_table(
            ["method"] + [f"{o}: remove {dr}" for o, dr in cols], rows, "lrrrr"
        )
    return out


def _cf_curvature(curv) -> list[str]:
    number = {run: str(i + 1) for i, run in enumerate(sorted(curv.run.unique()))}
    rows = [
        [number[r.run], r.setting, f"{r.damping:g}", f"{r.tol:g}", f"{r.seconds:.2f}",
         f"{r.epoch_seconds:.2f}", f"{r.epochs:.1f}", _cf_num(r.n_iter, 0),
         _cf_num(r.residual, 6), str(r.stop), str(bool(r.converged))]
        for r in curv.itertuples()
    ]  # fmt: skip
    header = ["run", "curvature", "damping", "tol", "seconds", "epoch (s)", "epochs",
              "CG iterations", "rel. residual", "stopped by", "converged"]  # fmt: skip
    return md_table(header, rows, "lllrrrrrrll")


def _cf_notes(methods) -> list[str]:
    rows = []
    for r in methods[methods.notes.notna()].itertuples():
        kept = [n for n in r.notes.split("; ") if n and "DeprecationWarning" not in n]
        if kept:
            cell = f"{CF_LABELS[r.dataset]} {CF_LABELS[r.model]} {r.objective}"
            rows.append([cell, r.method, "; ".join(kept)])
    return (
        md_table(["cell", "method", "warnings and errors"], rows) if rows else ["None."]
    )


# ---- end: counterfactual ----

# ---- section: dask (bench_dask.py) ----
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
    import math

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


# ---- end: dask ----

# ---- section: cleaning (bench_cleaning.py, bench_detection.py, bench_damping.py) ----
# ---- end: cleaning ----

# ---- section: fairness (bench_fairness.py, bench_trees.py) ----
# ---- end: fairness ----


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"reports (default all: {sorted(REPORTS)})")
    args = parser.parse_args()
    for name in args.names or sorted(REPORTS):
        if name not in REPORTS:
            parser.error(f"unknown report {name!r}; known: {sorted(REPORTS)}")
        write_result(RESULTS_DIR / f"{name}.md", "\n".join(REPORTS[name]()) + "\n")


if __name__ == "__main__":
    main()
