"""Sparse input: ip on a LogisticRegression fitted on a seeded CSR matrix; writes CSV.

Run from the repository root::

    python benchmarks/bench_sparse.py          # 8,000 x 50,000 -> results/speed_sparse.csv
    python benchmarks/bench_sparse.py --quick --out speed_sparse_quick   # 800 rows

One CSV row per measured quantity; ``python benchmarks/report.py speed_sparse``
renders them, benchmarks/README.md says what they are.
"""

from __future__ import annotations

import argparse
import sys

import harness as h
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from skinfluence import compute_influence


def sparse_problem(rows: int, features: int, nnz: int, seed: int):
    """Seeded CSR training and validation blocks (a quarter of the rows): ``nnz``
    distinct positions, normal values, labels from a random linear rule plus noise."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(features)

    def block(n, k):
        flat = rng.choice(n * features, size=k, replace=False)
        X = sp.csr_matrix((rng.standard_normal(k), (flat // features, flat % features)),
                          shape=(n, features))  # fmt: skip
        return X, (X @ w + 0.5 * rng.standard_normal(n) > 0).astype(np.int64)

    X, y = block(rows, nnz)
    return (X, y, *block(max(rows // 4, 2), max(nnz // 4, 1)))


def measure(a) -> list[tuple]:
    """``(name, value, note)`` of the fit and of ip's time and peak memory (``a``: the options)."""
    X, y, X_val, y_val = sparse_problem(a.rows, a.features, a.nnz, a.seed)
    fit = h.timed(lambda: LogisticRegression(max_iter=1000).fit(X, y))
    kw = {} if a.batch_size is None else {"batch_size": a.batch_size}

    def score(n=None):
        return compute_influence(fit.result, X[:n], y[:n], X_val, y_val, method="ip",
                                 objective="utility", **kw)  # fmt: skip

    base = h.rss_mb()  # data and fitted model in memory
    score(256)  # warm-up (its peak counts too: the baseline is taken before it)
    t = h.timed(lambda: h.peak_beyond(score))
    scores, delta = t.result
    if delta is None or not np.isfinite(scores).all():
        raise RuntimeError("peak RSS unknown (/proc/self/clear_refs) or non-finite scores")
    data = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in (X, X_val))
    return [
        ("training rows", X.shape[0], "CSR, float64"),
        ("features", X.shape[1], ""),
        ("non-zeros", int(X.nnz), "distinct positions, normal values"),
        ("validation rows", X_val.shape[0], ""),
        ("validation non-zeros", int(X_val.nnz), ""),
        ("sparse data (MiB)", data / 2**20, "training and validation rows"),
        ("training rows dense, float64 (MiB)", X.shape[0] * X.shape[1] * 8 / 2**20, ""),
        ("LogisticRegression(max_iter=1000).fit (s)", fit.best, ""),
        ("compute_influence, ip, utility (s)", t.best,
         f"batch_size: {a.batch_size or 'package default'}; after a 256-row warm-up"),
        ("compute_influence / fit", t.best / fit.best, ""),
        ("peak beyond data and fitted model (MiB)", h.hwm_mb() - base, "baseline before the warm-up"),
        ("peak beyond the RSS before the timed call (MiB)", delta, ""),
    ]  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="800 rows: a smoke test")
    p.add_argument("--out", default="speed_sparse", help="writes results/<OUT>.csv")
    p.add_argument("--rows", type=int, help="training rows (default 8,000; 800 with --quick)")
    p.add_argument("--features", type=int, default=50_000)
    p.add_argument("--nnz", type=int, help="non-zeros of the training rows (default 5 per row)")
    p.add_argument("--batch-size", type=int, help="of compute_influence (default: the package's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own default)")
    args = p.parse_args(argv)
    args.rows = args.rows or (800 if args.quick else 8_000)
    args.nnz = args.nnz or 5 * args.rows
    h.set_threads(args.threads)
    facts = [("sparse", *f) for f in measure(args)]
    h.log("\n".join(f"{name}: {value:.4g} {note}" for _, name, value, note in facts))
    h.write_csv(args.out, pd.DataFrame(facts, columns=["part", "name", "value", "note"]), argv=argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
