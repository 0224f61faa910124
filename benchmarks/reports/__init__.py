"""The renderers of ``report.py``, one module per benchmark family, and what they share.

Each module registers its reports with :func:`report`; ``report.py`` imports
them all and writes ``results/<name>.md``.
"""

from __future__ import annotations

import json

import pandas as pd
from harness import RESULTS_DIR, md_table

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
