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


# ---- section: speed (bench_speed.py, bench_sparse.py, bench_memory_cache.py) ----
SPEED_PARTS = {  # the part column of results/speed*.csv -> its section's title
    "setup": "Setup",
    "time": "Times (value: seconds, the fastest run; relative: x epoch)",
    "ratio": "Ratios and agreement (max rel diff = max|ours - captum| / max|captum|)",
    "memory": "Memory (ip, synthetic rows, separate process)",
    "sparse": "Sparse input (ip, LogisticRegression, separate process)",
    "sweep": "ip time vs batch_size (value: seconds; relative: x epoch)",
    "kernel": "Kernel costs (skinfluence.kernels; value: seconds; relative: x plain forward)",
}


def _speed_cell(v) -> str:
    """A cell as stored: whole numbers with thousands separators, blank if missing."""
    if not isinstance(v, float):
        return str(v)
    return "" if pd.isna(v) else f"{v:,.0f}" if v.is_integer() else f"{v:g}"


@report("speed")
def speed_md(name: str = "speed") -> list[str]:
    """One table per part of ``results/<name>.csv`` (bench_speed.py, bench_sparse.py)."""
    frame = csv(name)
    if "other_load" in frame:
        frame["other_load"] = frame["other_load"].map(lambda v: v if pd.isna(v) else f"{v:.0%}")
    title = "sparse input" if name.endswith("sparse") else "skinfluence against captum's TracInCP"
    out = [f"# Speed benchmark: {title}", "", *run_facts(name)]
    for part, heading in SPEED_PARTS.items():
        rows = frame[frame["part"] == part].drop(columns="part").dropna(axis=1, how="all")
        if len(rows):
            out += ["", f"## {heading}", "", *frame_table(rows.map(_speed_cell))]
    return out


report("speed_sparse")(lambda: speed_md("speed_sparse"))


@report("memory_cache")
def memory_cache_md() -> list[str]:
    """bench_memory_cache.py: one row per method."""
    formats = {"seconds_without": ".2f", "seconds_with": ".2f", "ratio": ".3f"}
    title = "# InfluenceFilter memory: GridSearchCV over prune_ratio"
    return [title, "", *run_facts("memory_cache"), "", *frame_table(csv("memory_cache"), formats)]
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
SCENARIOS = {  # bench_cleaning's scenario -> (title, targeted metric, higher is better)
    "utility": ("utility (clean labels)", "test_acc", True),
    "noise20": ("utility, 20% uniform label noise in the training rows", "test_acc",
                True),
    "noise20_class": ("utility, 20% class-dependent label noise (negatives flipped "
                      "to positive)", "test_acc", True),
    "fairness_dp": ("fairness: demographic parity", "test_dp", False),
    "fairness_eo": ("fairness: equal opportunity", "test_eo", False),
    "robustness": ("robustness: FGSM", "test_rob", True),
}  # fmt: skip
METRIC = {"test_acc": "accuracy", "test_dp": "DP gap", "test_eo": "EO gap",
          "test_rob": "robust acc."}  # fmt: skip


def cleaning_rows(name: str) -> pd.DataFrame:
    """``results/<name>.csv`` of bench_cleaning, ready for the tables.

    The rows shared by the clean-label scenarios (no pruning, random, loss:
    scenario "clean") are repeated under each; ``d_acc``: the test accuracy
    minus that without pruning, per seed.
    """
    from bench_cleaning import CLEAN_SCENARIOS

    df = csv(name)
    clean = df[df.scenario == "clean"]
    df = pd.concat([df[df.scenario != "clean"]]
                   + [clean.assign(scenario=s) for s in CLEAN_SCENARIOS])  # fmt: skip
    df["ratio"] = df["ratio"].round(4)
    keys = ["dataset", "model", "scenario", "seed"]
    none = df[df.method == "none"].set_index(keys)["test_acc"]
    df["d_acc"] = df.test_acc - none.reindex(pd.MultiIndex.from_frame(df[keys])).values
    return df


def combos(df) -> list[tuple[str, str]]:
    """The (data set, model) pairs of ``df``, in the order they were run."""
    return list(dict.fromkeys(zip(df.dataset, df.model, strict=True)))


def pick(df, ds, kind, scn, method, ratio=None) -> pd.DataFrame:
    """The rows of one cell (``ratio`` None: no ratio, as for "none")."""
    m = (df.dataset == ds) & (df.model == kind) & (df.scenario == scn)
    m &= df.ratio.isna() if ratio is None else df.ratio == round(ratio, 4)
    return df[m & (df.method == method)]


def names_for(kind: str, noisy: bool) -> list[str]:
    """Influence methods, then baselines, then cleanlab, as run on ``kind``."""
    from bench_cleaning import BASELINES, methods_for

    return [*methods_for(kind), *BASELINES] + ["cleanlab"] * noisy


def fairness_tables(df, at=0.05) -> list[str]:
    """Demographic-parity objective: the gap at ``at`` pruned; its fall per ratio."""
    fair = df[df.scenario == "fairness_dp"]
    ratios, rows, falls = sorted(fair.ratio.dropna().unique()), [], []
    for ds, kind in combos(fair):
        none = pick(fair, ds, kind, "fairness_dp", "none")
        dp0, acc0 = none.test_dp.mean(), none.test_acc.mean()
        for m in names_for(kind, False):
            cells = []
            for r in ratios:
                sel = pick(fair, ds, kind, "fairness_dp", m, r)
                dp, dacc = sel.test_dp.mean(), 100 * (sel.test_acc.mean() - acc0)
                cells.append(f"{1 - dp / dp0:.0%} ({dacc:+.2f})")
                if r == at:
                    rows.append([ds, kind, m, len(sel), f"{dp0:.3f} -> {dp:.3f}",
                                 f"{100 * (dp / dp0 - 1):+.1f}%", f"{dacc:+.2f}"])  # fmt: skip
            falls.append([ds, kind, m, *cells])
    head = ["data set", "model", "method", "seeds", "DP gap (none -> pruned)",
            "DP change", "accuracy change (points)"]  # fmt: skip
    return [
        f"## Demographic parity at {at:.0%} pruned", "",
        "Objective: demographic parity; test DP gap and accuracy, means over seeds.",
        "", *md_table(head, rows), "",
        "Fall of the test DP gap (accuracy change, points) per ratio pruned:", "",
        *md_table(["data set", "model", "method", *(f"{r:g}" for r in ratios)], falls),
        "",
    ]  # fmt: skip


def noise_table(df, group: str) -> list[str]:
    """Recovery of the accuracy the label noise of ``group`` cost, per method.

    Recovery = (acc pruned - acc noisy) / (acc clean - acc noisy), means over
    seeds; the ratio is chosen per seed on the validation accuracy.
    """
    from harness import mean_std

    head = ["data set", "model", "acc clean / noisy (cost, points)", "method",
            "recovery (val-chosen ratio)", "Δ acc vs noisy (points, paired)",
            "recovery at 0.1", "at 0.2", "ratios chosen"]  # fmt: skip
    rows, noisy = [], df[df.scenario == group]
    for ds, kind in combos(noisy):
        a_clean = pick(df, ds, kind, "utility", "none").test_acc.mean()
        a_noisy = pick(noisy, ds, kind, group, "none").test_acc.mean()
        cost = a_clean - a_noisy
        lead = [ds, kind, f"{a_clean:.4f} / {a_noisy:.4f} ({100 * cost:+.2f})"]

        def recovery(sel):
            return f"{(sel.test_acc.mean() - a_noisy) / cost:.0%}" if len(sel) else "—"

        for m in [*names_for(kind, True), "cleanlab_flags"]:
            if m == "cleanlab_flags":  # its own flags, its own count
                sel = pick(noisy, ds, kind, group, m)
                chosen = "own: " + ", ".join(f"{x:.2f}" for x in sel.n_removed / sel.n_train)
            else:  # per seed, the ratio with the best validation accuracy
                some = noisy[(noisy.dataset == ds) & (noisy.model == kind)]
                some = some[(some.method == m) & some.ratio.notna()]
                sel = some.loc[some.groupby("seed", sort=False).val_acc.idxmax().values]
                chosen = ", ".join(f"{x:g}" for x in sel.ratio)
            fixed = [recovery(pick(noisy, ds, kind, group, m, r)) for r in (0.1, 0.2)]
            delta = mean_std(sel.d_acc, scale=100, digits=2)
            rows.append([*lead, m, recovery(sel), delta, *fixed, chosen])
    return md_table(head, rows) + [""]


def summary_table(df, at=0.05) -> list[str]:
    """Per (data set, model, scenario): the targeted test metric at ``at`` pruned."""
    from bench_cleaning import BASELINES, INFLUENCE

    names, rows = [*INFLUENCE, *BASELINES, "cleanlab"], []
    for (ds, kind), scn in ((c, s) for c in combos(df) for s in SCENARIOS):
        _, col, higher = SCENARIOS[scn]
        if not len(none := pick(df, ds, kind, scn, "none")):
            continue
        vals = {}
        for m in names:
            if len(sel := pick(df, ds, kind, scn, m, at)):
                dacc = 100 * (sel.test_acc.mean() - none.test_acc.mean())
                vals[m] = (sel[col].mean(), dacc)
        infl = [v for m, (v, _) in vals.items() if m in INFLUENCE]
        best = round((max if higher else min)(infl), 3)
        cells = ["—" if m not in vals else
                 ("**{:.3f}**" if m in INFLUENCE and round(vals[m][0], 3) == best
                  else "{:.3f}").format(vals[m][0]) + f" ({vals[m][1]:+.2f})"
                 for m in names]  # fmt: skip
        metric = f"{METRIC[col]} ({'higher' if higher else 'lower'} is better)"
        rows.append([ds, kind, scn, metric, f"{none[col].mean():.3f}", *cells])
    return [
        f"## Summary at {at:.0%} pruned", "",
        "Each cell: the test metric the scenario's objective targets (mean over "
        "seeds), then the accuracy change in points against no pruning. Best "
        "influence method per line in bold (ties included).", "",
        *md_table(["data set", "model", "scenario", "metric", "none", *names], rows),
        "",
    ]  # fmt: skip


def detail_table(d, ds, kind, scn) -> list[str]:
    """Every method and ratio of one scenario: mean ± std over seeds."""
    from harness import mean_std

    noisy = scn.startswith("noise")
    head = ["method", "pruned", "test accuracy", "Δ accuracy (points, paired)",
            "DP gap", "EO gap", "robust accuracy (FGSM)"]  # fmt: skip
    head += ["flipped share of removed"] * noisy
    rows = []

    def line(label, pruned, r):
        paired = "—" if label == "none" else mean_std(r.d_acc, scale=100, digits=2)
        share = r.flipped_removed / r.n_removed.where(r.n_removed > 0)
        rows.append([label, pruned, mean_std(r.test_acc, digits=4), paired,
                     mean_std(r.test_dp), mean_std(r.test_eo), mean_std(r.test_rob)]
                    + ["—" if label == "none" else mean_std(share, digits=2)] * noisy)  # fmt: skip

    line("none", "0", pick(d, ds, kind, scn, "none"))
    for r in sorted(d.ratio.dropna().unique()):
        for m in names_for(kind, noisy):
            if len(sel := pick(d, ds, kind, scn, m, r)):
                line(m, f"{r:g}", sel)
    if len(own := pick(d, ds, kind, scn, "cleanlab_flags")):
        line("cleanlab (own flags)", f"{(own.n_removed / own.n_train).mean():.3f}", own)
    return [f"#### {SCENARIOS[scn][0]}", "", *md_table(head, rows), ""]


def cleaning_md(name: str) -> list[str]:
    """``results/<name>.md`` of bench_cleaning: fairness, noise, summary, details."""
    df = cleaning_rows(name)
    quick = " (smoke run: reduced data, seeds and epochs)" * name.endswith("_quick")
    facts = run_facts(name) or ["> No run facts: the run is unfinished."]
    out = [f"# Cleaning-quality benchmark{quick}", "", *facts, "", *fairness_tables(df)]
    for group in ("noise20", "noise20_class"):
        out += [f"## Label noise: {SCENARIOS[group][0]}", "", *noise_table(df, group)]
    out += summary_table(df)
    for ds, kind in combos(df):
        d = df[(df.dataset == ds) & (df.model == kind)]
        model = "skorch MLP" if kind == "mlp" else "LogisticRegression"
        seeds = f"Seeds {sorted(set(d.seed.tolist()))}; {d.n_train.iloc[0]} training rows."
        out += [f"## {ds} / {model}", "", seeds, ""]
        for scn in SCENARIOS:
            out += detail_table(d, ds, kind, scn) if (d.scenario == scn).any() else []
    return out


report("cleaning")(lambda: cleaning_md("cleaning"))
report("cleaning_quick")(lambda: cleaning_md("cleaning_quick"))


@report("detection")
def detection_md(name: str = "detection") -> list[str]:
    """F1 and ROC AUC of each detector per scenario, mean ± std over seeds."""
    df = csv(name)

    def cell(r, metric):
        mean, std = r[f"{metric}_mean"], r[f"{metric}_std"]
        return "—" if pd.isna(mean) else f"{mean:.3f} ± {std:.3f}"

    out = ["# Detection benchmark", "", *run_facts(name), ""]
    for ds, d in df.groupby("dataset", sort=False):
        scs = list(dict.fromkeys(d.scenario))
        by = {(r.detector, r.scenario): r for _, r in d.iterrows()}
        head = ["detector"] + [f"{s} {m}" for s in scs for m in ("F1", "AUC")]
        rows = [[k] + [cell(by[(k, s)], m) for s in scs for m in ("f1", "auc")]
                for k in dict.fromkeys(d.detector)]  # fmt: skip
        sizes = d.drop_duplicates("scenario")
        sizes = ", ".join(f"{r.scenario} {r.n_train}" for r in sizes.itertuples())
        out += [f"## {ds}", "", f"Mean ± std over {d.n_seeds.max()} seeds.", "",
                *md_table(head, rows), "", f"Training rows per scenario: {sizes}.", ""]  # fmt: skip
    return out


@report("damping")
def damping_md(name: str = "damping") -> list[str]:
    """LDS per relative damping and cell, CG within 200 iterations, the trace."""
    df = csv(name)
    df["cell"] = df.dataset + " " + df.model + " " + df.objective
    lds = df.pivot_table(index="damping", columns="cell", values="lds", sort=False)
    lds = lds.assign(mean=lds.mean(axis=1, skipna=False),
                     min=lds.min(axis=1, skipna=False))  # fmt: skip
    cg = df.dropna(subset=["within_200"]).groupby("damping", sort=False).within_200
    lds["CG within 200 it. (all cells)"] = cg.all().reindex(lds.index).map(
        {True: "yes", False: "no"})  # fmt: skip
    rows = [[k, *("—" if pd.isna(v) else v if isinstance(v, str) else f"{v:.3f}"
                  for v in r)] for k, r in lds.iterrows()]  # fmt: skip
    names = {"trace_per_param": "trace / P (seeded)", "exact_trace_per_param": "exact"}
    trace = df.drop_duplicates(["dataset", "model"]).rename(columns=names)
    trace = trace[["dataset", "model", "P", *names.values()]]
    return [
        "# Damping of the influence function", "", *run_facts(name), "",
        "LDS against retraining per relative damping (lambda = damping x trace/P):",
        "", *md_table(["damping", *lds.columns], rows, "l" + "r" * len(lds.columns)),
        "", "The curvature's scale:", "",
        *frame_table(trace, {"trace / P (seeded)": ".4g", "exact": ".4g"}), "",
    ]  # fmt: skip
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
