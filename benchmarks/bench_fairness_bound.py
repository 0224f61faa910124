"""A small demonstration of ``Fairness(bound=b)`` through ``fairness_front`` (not the protocol).

Run from the repository root::

    python benchmarks/bench_fairness_bound.py                 # Adult, ~10 min on 2 slow cores
    python benchmarks/bench_fairness_bound.py --data compas   # COMPAS (small)

Adult: every row of the ``"train"`` file (30,162 rows) goes to
``fairness_front``, which splits off 20% as the filter's validation rows
(stratified by label and group) and cleans the rest; the ``"test"`` file
(15,060 rows) is held out and chooses nothing. COMPAS (African-American and
Caucasian rows): a stratified 70/30 split. The model is the benchmarks'
LogisticRegression (Newton, C=1) after a one-hot + scaler preprocessing, in a
Pipeline; the gap is demographic parity between the sexes (Adult) or the two
races (COMPAS).

Per bound in {0.02, 0.05, 0.1}, seed 0: the held-out gap (hard predictions)
and accuracy of ``InfluenceFilter(objective=Fairness(bound=b))`` (the
filter's defaults otherwise: method "ip", the utility constraint, removal;
``prune_ratio=0.2`` as the cap), and of ``method="influence_function"``;
against Kamiran-Calders reweighing on the same model and rows
(``baselines=True``, which adds fairlearn's ExponentiatedGradient when it is
installed). Writes ``benchmarks/results/fairness_bound_demo.csv``; one seed,
one data set, one model: a demonstration, not a claim about the defaults.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from harness import (
    RESULTS_DIR,
    load_dataset,
    log,
    make_logreg,
    preprocessor,
    set_threads,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skinfluence import fairness_front

BOUNDS = (0.02, 0.05, 0.1)
CONFIGS = {  # name -> InfluenceFilter parameters besides the bound
    "ip (defaults)": {},
    "influence_function": {"method": "influence_function"},
}


def data(name: str):
    """Rows to clean and held-out rows: ``(X, y, s), (X_test, y_test, s_test)``."""
    if name == "adult":
        return load_dataset("adult", subset="train"), load_dataset(
            "adult", subset="test"
        )
    X, y, s = load_dataset("compas", two_races=True)
    strata = pd.Series(y).astype(str).to_numpy() + s
    parts = train_test_split(X, y, s, test_size=0.3, stratify=strata, random_state=0)
    return tuple(parts[0::2]), tuple(parts[1::2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=("adult", "compas"), default="adult")
    parser.add_argument("--prune-ratio", type=float, default=0.2)
    args = parser.parse_args()
    set_threads(1)
    (X, y, s), (Xt, yt, st) = data(args.data)
    log(f"{args.data}: {len(y)} rows to clean, {len(yt)} held out")
    model = make_pipeline(preprocessor(X), make_logreg())
    frames = []
    for i, (name, params) in enumerate(CONFIGS.items()):
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            front = fairness_front(
                model, X, y, sensitive_features=s, bounds=BOUNDS, X_test=Xt,
                y_test=yt, sensitive_features_test=st, prune_ratio=args.prune_ratio,
                baselines=i == 0, random_state=0, **params,
            )  # fmt: skip
        for w in caught:
            if "above the bound" in str(w.message):
                log(f"  warning: {w.message}")
        front.insert(0, "config", np.where(front["method"] == "influence", name, ""))
        frames.append(front)
        log(f"{name}: {time.perf_counter() - start:.0f} s")
        log("\n" + front.round(4).to_string(index=False))
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "data", args.data)
    table.insert(1, "seed", 0)
    table.insert(2, "n_rows", len(y))
    table["prune_ratio"] = args.prune_ratio
    out = RESULTS_DIR / "fairness_bound_demo.csv"
    if args.data != "adult":
        out = out.with_name(f"fairness_bound_demo_{args.data}.csv")
    table.to_csv(out, index=False, float_format="%.6g")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
