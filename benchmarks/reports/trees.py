"""The boosted-tree report: tables from the CSVs of bench_trees.py."""

from __future__ import annotations

import pandas as pd
from harness import RESULTS_DIR, md_table

from . import report


def _read(part: str) -> pd.DataFrame | None:
    path = RESULTS_DIR / f"trees_{part}.csv"
    return pd.read_csv(path) if path.exists() else None


def _table(frame: pd.DataFrame, columns: list[str], digits: int = 4) -> list[str]:
    rows = [
        [f"{v:.{digits}g}" if isinstance(v, float) else v for v in r]
        for r in frame[columns].itertuples(index=False)
    ]
    return md_table(columns, rows)


def speed(frame) -> list[str]:
    ours = frame[(frame.impl == "skinfluence") & (frame.method == "boostin")].seconds.min()
    frame = frame.assign(ratio_to_our_boostin=frame.seconds / ours)
    return ["## Speed: BoostIn against tree_influence", "",
            *_table(frame, ["impl", "method", "seconds", "ratio_to_our_boostin", "cosine"])]


def scale(frame) -> list[str]:
    return ["## Scale", "", *_table(
        frame, ["method", "rows", "trees", "seconds", "peak_mib_beyond_data", "data_mib"])]


def lds(frame) -> list[str]:
    pivot = frame.pivot_table(index=["data", "model"], columns="method", values="lds")
    pivot = pivot.reset_index()
    return ["## Which method predicts retraining (LDS, 100 random halves)", "",
            *_table(pivot, list(pivot.columns), digits=3)]


def fairness(frame) -> list[str]:
    out = ["## Fairness fronts (test rows)", ""]
    for (data, model), g in frame.groupby(["data", "model"], sort=False):
        none = g[g.config == "none"].iloc[0]
        g = g.assign(
            dp_change_pct=100 * (g.dp_gap / none.dp_gap - 1),
            accuracy_change_points=100 * (g.accuracy - none.accuracy),
        )
        out += [f"### {data}, {model}", "", *_table(g, [
            "config", "accuracy", "accuracy_change_points", "dp_gap", "dp_change_pct",
            "eo_gap", "rows_touched", "fits", "seconds"], digits=3), ""]
    return out


def surrogate(frame) -> list[str]:
    return ["## RandomForest through a LogisticRegression surrogate (Adult test)", "",
            *_table(frame, ["config", "accuracy", "dp_gap", "eo_gap", "rows_touched",
                            "seconds"], digits=3)]


@report("trees")
def trees_md() -> list[str]:
    lines = ["# Boosted trees", "",
             "Rendered from `benchmarks/results/trees_*.csv` by `benchmarks/report.py`; "
             "each CSV row names the run (date and command) that wrote it.", ""]
    for part, render in [("speed", speed), ("scale", scale), ("lds", lds),
                         ("fairness", fairness), ("surrogate", surrogate)]:
        frame = _read(part)
        if frame is not None:
            lines += render(frame) + [""]
    return lines[:-1]
