"""Render the benchmark tables (and plots) from the CSVs in ``results/``.

Run from the repository root::

    python benchmarks/report.py            # every report
    python benchmarks/report.py fairness   # some of them

Each ``bench_*.py`` script measures and writes ``results/<name>.csv`` (with
``results/<name>.run.json``, the run's date, command, commit and machine:
``harness.write_csv``); this script turns them into ``results/<name>.md``,
which the documentation includes. The renderers live in ``reports/``, one
module per benchmark family. Tables only: the targets and the verdicts on
them live in ``benchmarks/README.md`` and the project README.
"""

from __future__ import annotations

import argparse

from harness import RESULTS_DIR, write_result
from reports import (  # noqa: F401  (each module registers its reports)
    REPORTS,
    cleaning,
    counterfactual,
    dask,
    fairness,
    speed,
    trees,
)


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
