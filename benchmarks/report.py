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

# ---- section: counterfactual (bench_counterfactual.py) ----
# ---- end: counterfactual ----

# ---- section: dask (bench_dask.py) ----
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
