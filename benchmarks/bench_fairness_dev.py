"""The development runs behind bench_fairness.py's configuration (issue 17).

    python benchmarks/bench_fairness_dev.py            # Adult, ~5 min
    python benchmarks/bench_fairness_dev.py --data compas

LogisticRegression only (the model every choice was made on), development
seed 100: the rows to clean (Adult's ``"train"`` file; COMPAS's African-American
and Caucasian rows) split 60/20/20, stratified by label and group, into
training, validation (the filter's ``X_val``) and selection rows; Adult's
``"test"`` file is not read. Every candidate is fitted on the training rows
and measured on the validation and selection rows (hard DP gap, accuracy):
the model unchanged, Kamiran-Calders weights raised to a power,
ExponentiatedGradient, removal by one ranking (influence function or ip) at
fixed shares, re-scored rounds, reweighting, relabelling, reweighting by the
linear program over every row (Li and Liu), the bound's search,
and the search after Kamiran-Calders weights. Writes
``results/fairness_dev_<data>.csv``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import harness
import numpy as np
import pandas as pd
from fairlearn.reductions import DemographicParity, ExponentiatedGradient
from sklearn.base import clone

from skinfluence import Fairness, InfluenceFilter
from skinfluence.baselines import reweighing_weights
from skinfluence.metrics import demographic_parity_difference

SEED = 100
BOUNDS = (0.01, 0.02, 0.05, 0.1)


def splits(name: str):
    if name == "adult":
        X, y, s = harness.load_dataset("adult", subset="train")
    else:
        X, y, s = harness.load_dataset("compas", two_races=True)
    strata = np.char.add(y.astype(str), s)
    tr, rest = harness.split_rows(strata, 0.6, None, SEED)
    va, se = (rest[i] for i in harness.split_rows(strata[rest], 0.5, None, SEED))
    Xs = [a.astype(np.float64) for a in harness.encode(X.iloc[tr], X.iloc[va], X.iloc[se])]
    return {k: (Xk, y[i], s[i]) for k, Xk, i in zip(("train", "val", "sel"), Xs, (tr, va, se), strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=("adult", "compas"), default="adult")
    args = parser.parse_args()
    harness.set_threads(1)
    d = splits(args.data)
    (X, y, s), (Xv, yv, sv) = d["train"], d["val"]
    model, rows = harness.make_logreg(), []

    def record(candidate, param, predict, start):
        out = {"data": args.data, "seed": SEED, "candidate": candidate, "param": param,
               "seconds": time.perf_counter() - start}
        for part in ("val", "sel"):
            Xp, yp, sp = d[part]
            pred = predict(Xp)
            out[f"{part}_gap"] = demographic_parity_difference(yp, pred, sensitive_features=sp)
            out[f"{part}_accuracy"] = float(np.mean(pred == yp))
        rows.append(out)
        harness.log(f"{candidate:24s} {param!s:6s} " + " ".join(
            f"{k} {v:.4f}" for k, v in out.items() if k.endswith(("gap", "accuracy"))))

    def filtered(candidate, param, sample_weight=None, **params):
        start = time.perf_counter()
        flt = InfluenceFilter(model, random_state=0, **params)
        extra = {} if sample_weight is None else {"sample_weight": sample_weight}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a bound's cap warnings
            flt.fit(X, y, sensitive_features=s, X_val=Xv, y_val=yv,
                    sensitive_features_val=sv, **extra)  # fmt: skip
        record(candidate, param, flt.predict, start)

    start = time.perf_counter()
    record("none", "", clone(model).fit(X, y).predict, start)
    kc = reweighing_weights(y, sensitive_features=s)
    for power in (0.5, 1.0, 1.5, 2.0):
        start = time.perf_counter()
        record("kamiran_calders^power", power,
               clone(model).fit(X, y, sample_weight=kc**power).predict, start)  # fmt: skip
    for bound in BOUNDS:
        start = time.perf_counter()
        eg = ExponentiatedGradient(clone(model), DemographicParity(difference_bound=bound))
        eg.fit(X, y, sensitive_features=s)
        record("exponentiated_gradient", bound,
               lambda Xp, eg=eg: eg.predict(Xp, random_state=0), start)  # fmt: skip
    fair = Fairness("demographic_parity")
    for ratio in (0.05, 0.1, 0.15):
        for method in ("influence_function", "ip"):
            filtered(f"remove one ranking, {method}", ratio, objective=fair,
                     method=method, prune_ratio=ratio, constraint=None, rounds=1)  # fmt: skip
        filtered("remove, 5 re-scored rounds", ratio, objective=fair, rounds=5,
                 method="influence_function", prune_ratio=ratio, constraint=None)  # fmt: skip
        filtered("reweight", ratio, objective=fair, action="reweight", rounds=1,
                 method="influence_function", prune_ratio=ratio, constraint=None)  # fmt: skip
        filtered("relabel", ratio / 2.5, objective=fair, action="relabel", rounds=1,
                 method="influence_function", prune_ratio=ratio / 2.5, constraint=None)  # fmt: skip
    for ratio in (0.5, 0.99):  # Li and Liu: the linear program over (nearly) every row
        filtered("reweight by the linear program", ratio, objective=fair, rounds=1,
                 action="reweight", method="influence_function", prune_ratio=ratio,
                 constraint="utility")  # fmt: skip
    for bound in BOUNDS:
        fair_b = Fairness("demographic_parity", bound=bound)
        filtered("bound search", bound, objective=fair_b,
                 method="influence_function", prune_ratio=0.2)  # fmt: skip
        filtered("kamiran_calders^0.5, then bound search", bound, sample_weight=kc**0.5,
                 objective=fair_b, method="influence_function", prune_ratio=0.2)  # fmt: skip
    harness.write_csv(f"fairness_dev_{args.data}", pd.DataFrame(rows))


if __name__ == "__main__":
    main()
