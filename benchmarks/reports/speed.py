"""The speed reports: tables from bench_speed, bench_sparse and bench_memory_cache."""

from __future__ import annotations

import pandas as pd

from . import csv, frame_table, report, run_facts

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
