"""The counterfactual reports: tables from the CSVs of bench_counterfactual*.py."""

from __future__ import annotations

import pandas as pd
from harness import RESULTS_DIR, md_table

from . import csv, frame_table, report, run_facts

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
