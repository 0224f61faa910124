"""InfluenceFilter(memory=...) in a GridSearchCV over prune_ratio: measures, writes CSV.

Run from the repository root::

    python benchmarks/bench_memory_cache.py        # full run -> results/memory_cache.csv
    python benchmarks/bench_memory_cache.py --quick --out memory_cache_quick

A search over ``prune_ratio`` without ``memory`` and with a fresh cache,
alternating; both must give identical split scores. One CSV row per method;
``python benchmarks/report.py memory_cache`` renders them, and
benchmarks/README.md has the details and the target.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import harness as h
import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from skorch import NeuralNetClassifier

from skinfluence import InfluenceFilter
from skinfluence.metrics import demographic_parity_difference

GRID = [0.0, 0.02, 0.05, 0.1, 0.2]


class CountingNet(NeuralNetClassifier):
    """NeuralNetClassifier counting its fits (clones and subclasses included)."""

    n_fits = 0

    def fit(self, X, y, **fit_params):
        CountingNet.n_fits += 1  # not type(self): the package fits a subclass
        return super().fit(X, y, **fit_params)


def build(X, method, epochs, memory):
    """Preprocessing, then the filter around the counting MLP."""
    net = h.make_mlp(h.encoded_width(X), hidden=(64,), lr=0.05, momentum=0.9, batch_size=128,
                   epochs=epochs, net_class=CountingNet)  # fmt: skip
    flt = InfluenceFilter(net, objective="fairness", method=method, random_state=0,
                          memory=memory).set_fit_request(sensitive_features=True)  # fmt: skip
    return h.tabular_pipeline(X, flt)


def search(X, y, s, method, epochs, n_splits, memory):
    """One GridSearchCV over GRID: (seconds, cv_results_)."""
    dp = make_scorer(demographic_parity_difference, greater_is_better=False)
    gs = GridSearchCV(
        build(X, method, epochs, memory),
        {"influencefilter__prune_ratio": GRID},
        scoring={"accuracy": "accuracy", "dp": dp.set_score_request(sensitive_features=True)},
        refit=False,
        cv=StratifiedKFold(n_splits, shuffle=True, random_state=0),
        n_jobs=1,
    )
    with h.stopwatch() as sw:
        gs.fit(X, y, sensitive_features=s)
    return sw["seconds"], gs.cv_results_


def n_cached(location) -> int:
    """Calls stored in the cache directory (fits and their scores)."""
    return sum(1 for _ in Path(location).rglob("output.pkl"))


def check_same_scores(res, res2) -> None:
    for key in res:
        if key.startswith("split") and key.endswith(("_accuracy", "_dp")):
            assert np.array_equal(res[key], res2[key]), key


def cached_search(X, y, s, method, args):
    """A search with a fresh cache: (seconds, cv_results_, calls cached)."""
    location = tempfile.mkdtemp(prefix="skinfluence-bench-")
    try:
        t, res = search(X, y, s, method, args.epochs, args.cv, location)
        return t, res, n_cached(location)
    finally:
        shutil.rmtree(location, ignore_errors=True)


def run(method, args, X, y, s) -> dict:
    """Searches without and with memory, ``--repeats`` times, alternating: a CSV row."""
    plain, cached = [], []
    for r in range(args.repeats):
        CountingNet.n_fits = 0
        t, res = search(X, y, s, method, args.epochs, args.cv, None)
        n_plain, CountingNet.n_fits = CountingNet.n_fits, 0
        t2, res2, n_cached_calls = cached_search(X, y, s, method, args)
        if r == 0:
            fits = (n_plain, CountingNet.n_fits, n_cached_calls)
        plain.append(t)
        cached.append(t2)
        check_same_scores(res, res2)
        print(f"  {method} repeat {r + 1}: without {t:.2f} s, with {t2:.2f} s", flush=True)
    return {
        "method": method, "rows": args.rows, "epochs": args.epochs, "folds": args.cv,
        "seconds_without": min(plain), "seconds_with": min(cached),
        "ratio": min(cached) / min(plain),
        "net_fits_without": fits[0], "net_fits_with": fits[1], "cached_calls": fits[2],
        "runs_without": ", ".join(f"{t:.2f}" for t in plain),
        "runs_with": ", ".join(f"{t:.2f}" for t in cached),
    }  # fmt: skip


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["ip_ensemble", "ip"])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: more only spin on tiny nets)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="1,500 rows, 1 repeat")
    parser.add_argument("--out", default="memory_cache", help="writes results/<OUT>.csv")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 1500, 1
    return args


def main(argv=None):
    args = parse_args(argv)
    h.set_threads(args.threads)
    X, y, s = h.load_dataset("adult", subset="train")
    idx = h.sample_rows(len(X), args.rows, 0)
    X, y, s = X.iloc[idx].reset_index(drop=True), y[idx], s[idx]
    with config_context(enable_metadata_routing=True):
        for method in args.methods:  # warm-up (imports, first torch.func calls; not timed)
            search(X.iloc[:600], y[:600], s[:600], method, 1, 2, None)
        rows = [run(method, args, X, y, s) for method in args.methods]
    h.write_csv(args.out, pd.DataFrame(rows), argv=argv)


if __name__ == "__main__":
    sys.exit(main())
