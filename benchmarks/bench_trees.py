"""Boosted trees: speed against tree_influence, scale, which method predicts
retraining. Writes CSV rows to ``benchmarks/results/trees_*.csv``; targets and
verdicts are in ``benchmarks/README.md``.

    python benchmarks/bench_trees.py speed      # Adult, 30,000 x 6,000, LightGBM 200 x 31
    python benchmarks/bench_trees.py scale      # 1,000,000 rows x 500 trees
    python benchmarks/bench_trees.py lds        # LDS over 100 random halves
    python benchmarks/bench_trees.py surrogate  # a random forest cleaned through a surrogate
    python benchmarks/bench_trees.py fairness   # DP and EO fronts on LightGBM and HGB

tree_influence (Brophy et al.) is compared when it is importable: its PyPI
sdist does not build, so build its source (``python setup.py build_ext
--inplace`` in a checkout) and put it on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import sys

import harness
import numpy as np

from skinfluence import compute_influence
from skinfluence.metrics import linear_datamodeling_score

RESULTS = harness.RESULTS_DIR


def _lgbm(n_trees, leaves, seed=0):
    import lightgbm as lgb

    return lgb.LGBMClassifier(
        n_estimators=n_trees, num_leaves=leaves, random_state=seed, verbose=-1, n_jobs=1
    )


def _hgb(n_trees, leaves, seed=0):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=n_trees, max_leaf_nodes=leaves, early_stopping=False, random_state=seed
    )


MODELS = {"lightgbm": _lgbm, "hgb": _hgb}


def _adult_rows(n_train, n_val, seed):
    X, y, _ = harness.load_dataset("adult")
    tr, va = harness.split_rows(y, n_train, n_val, seed)
    Xtr, Xva = harness.encode(X.iloc[tr], X.iloc[va])
    return Xtr, y[tr], Xva, y[va]


def _cosine(a, b) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# ------------------------------------------------------------------ speed
def speed(args) -> list[dict]:
    Xtr, ytr, Xva, yva = _adult_rows(args.n_train, args.n_val, args.seed)
    est = _lgbm(args.trees, args.leaves, args.seed).fit(Xtr, ytr)
    rows = []
    ours = {}
    for method in ("boostin", "ip"):
        t = harness.timed(
            lambda m=method: compute_influence(est, Xtr, ytr, Xva, yva, method=m),
            repeats=args.repeats,
        )
        ours[method] = t.result
        rows.append(dict(impl="skinfluence", method=method, seconds=t.best, cosine=1.0))
        harness.log(f"skinfluence {method}: {t.runs()} s")
    try:
        from tree_influence.explainers import BoostIn
    except ImportError:
        harness.log("tree_influence is not importable: only our rows are written")
        return rows

    def reference():
        return BoostIn().fit(est, Xtr, ytr).get_local_influence(Xva, yva).sum(1) / len(yva)

    t = harness.timed(reference)
    cos = _cosine(ours["boostin"], t.result)
    rows.append(dict(impl="tree_influence", method="boostin", seconds=t.best, cosine=cos))
    harness.log(f"tree_influence BoostIn: {t.runs()} s, cosine {cos:.6f}")
    return rows


# ------------------------------------------------------------------ scale
def scale(args) -> list[dict]:
    from sklearn.datasets import make_classification

    n_val = 10_000
    X, y = make_classification(
        args.n_rows + n_val, 20, n_informative=10, flip_y=0.05, random_state=args.seed
    )
    X = X.astype(np.float32)
    Xtr, ytr, Xva, yva = X[:-n_val], y[:-n_val], X[-n_val:], y[-n_val:]
    with harness.stopwatch() as sw:
        est = _lgbm(args.trees, args.leaves, args.seed).fit(Xtr, ytr)
    harness.log(f"fitted {args.trees} trees on {len(Xtr)} rows in {sw['seconds']:.0f} s")
    rows = []
    for method in ("ip", "boostin"):
        with harness.stopwatch() as sw:
            scores, peak = harness.peak_beyond(
                lambda m=method: compute_influence(est, Xtr, ytr, Xva, yva, method=m)
            )
        assert np.all(np.isfinite(scores))
        rows.append(
            dict(method=method, rows=len(Xtr), trees=args.trees, seconds=sw["seconds"],
                 peak_mib_beyond_data=peak, data_mib=Xtr.nbytes / 2**20)
        )
        harness.log(f"{method}: {sw['seconds']:.1f} s, peak {peak} MiB beyond the data")
    return rows


# ------------------------------------------------------------------ LDS
def _load(name, n_train, n_val, seed):
    X, y, _ = harness.load_dataset(name)
    n_val = min(n_val, len(y) // 5)  # COMPAS: a fifth of its rows
    n_train = min(n_train, len(y) - n_val)
    tr, rest = harness.split_rows(y, n_train, None, seed)
    va = rest[:n_val]
    Xtr, Xva = harness.encode(X.iloc[tr], X.iloc[va])
    return Xtr, y[tr], Xva, y[va]


def _val_loss(est, X, y) -> float:
    p = np.clip(est.predict_proba(X)[np.arange(len(y)), y], 1e-12, 1)
    return float(-np.mean(np.log(p)))


def lds(args) -> list[dict]:
    from sklearn.base import clone

    rows = []
    for data in args.data:
        Xtr, ytr, Xva, yva = _load(data, args.n_train, args.n_val, args.seed)
        rng = np.random.RandomState(args.seed)
        subsets = np.zeros((args.halves, len(ytr)), bool)
        for m in range(args.halves):
            subsets[m, rng.permutation(len(ytr))[: len(ytr) // 2]] = True
        for model in args.models:
            est = MODELS[model](args.trees, args.leaves, args.seed).fit(Xtr, ytr)
            measured = np.array(
                [_val_loss(clone(est).fit(Xtr[s], ytr[s]), Xva, yva) for s in subsets]
            )
            for method in args.methods:
                with harness.stopwatch() as sw:
                    scores = compute_influence(est, Xtr, ytr, Xva, yva, method=method)
                score = linear_datamodeling_score(scores, subsets, measured)
                rows.append(dict(data=data, model=model, method=method, lds=score,
                                 seconds=sw["seconds"], n_train=len(ytr), halves=args.halves))
                harness.log(f"{data} {model} {method}: LDS {score:.3f}")
    return rows


# ------------------------------------------------------------------ surrogate
def _adult_train_test(data="adult", seed=0):
    """Adult's train and test subsets (whole), or COMPAS split 70/30 by a seed."""
    if data == "adult":
        X, y, s = harness.load_dataset("adult", subset="train")
        Xt, yt, st = harness.load_dataset("adult", subset="test")
    else:
        X, y, s = harness.load_dataset("compas", two_races=True)
        tr, te = harness.split_rows(y, 0.7, None, seed)
        X, Xt, y, yt, s, st = X.iloc[tr], X.iloc[te], y[tr], y[te], s[tr], s[te]
    Xtr, Xte = harness.encode(X, Xt)
    return Xtr, y, s, Xte, yt, st


def _fair_row(name, est, Xte, yte, ste, seconds, touched, fits=1, predict=None):
    from skinfluence.metrics import (
        demographic_parity_difference,
        equal_opportunity_difference,
    )

    pred = est.predict(Xte) if predict is None else predict(Xte)
    return dict(config=name, accuracy=float(np.mean(pred == yte)),
                dp_gap=demographic_parity_difference(yte, pred, sensitive_features=ste),
                eo_gap=equal_opportunity_difference(yte, pred, sensitive_features=ste),
                rows_touched=touched, fits=fits, seconds=seconds)


def fairness(args) -> list[dict]:
    """Ours (each action, ratios; DP and EO objectives) against Kamiran-Calders
    weights, fairlearn's ExponentiatedGradient (same trees, sample_weight) and
    ThresholdOptimizer, on the test rows: fits and seconds for every point."""
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.reductions import (
        DemographicParity,
        ExponentiatedGradient,
        TruePositiveRateParity,
    )
    from sklearn.base import clone

    from skinfluence import Fairness, InfluenceFilter
    from skinfluence.baselines import reweighing_weights

    rows = []
    for data in args.data:
        Xtr, ytr, s, Xte, yte, ste = _adult_train_test(data, args.seed)
        for model in args.models:
            base = MODELS[model](args.trees, args.leaves, args.seed)
            out = []

            def add(name, est, sec, touched, fits=1, predict=None):
                out.append(_fair_row(name, est, Xte, yte, ste, sec, touched, fits, predict))
                out[-1].update(data=data, model=model)
                harness.log(f"{data} {model} {out[-1]}")

            with harness.stopwatch() as sw:
                plain = clone(base).fit(Xtr, ytr)
            add("none", plain, sw["seconds"], 0)
            with harness.stopwatch() as sw:
                kc = clone(base).fit(Xtr, ytr, sample_weight=reweighing_weights(ytr, sensitive_features=s))
            add("Kamiran-Calders", kc, sw["seconds"], len(ytr))
            for metric, ratios in (("demographic_parity", args.ratios),
                                   ("equal_opportunity", [0.01, 0.02])):
                for ratio in ratios:
                    for action in ("remove", "reweight", "relabel"):
                        flt = InfluenceFilter(base, objective=Fairness(metric=metric),
                                              prune_ratio=ratio, action=action,
                                              random_state=args.seed)
                        with harness.stopwatch() as sw:
                            flt.fit(Xtr, ytr, sensitive_features=s)
                        touched = int(np.sum(flt.sample_weight_[flt.sample_weight_ > 0] < 1)
                                      + len(flt.removed_indices_) + len(flt.relabeled_indices_))
                        add(f"ours {metric} {action} {ratio:g}", flt, sw["seconds"], touched,
                            fits=flt.rounds_ + 1)
            for name, moment in (("dp", DemographicParity), ("eo", TruePositiveRateParity)):
                for bound in (0.01, 0.02, 0.05, 0.1):
                    eg = ExponentiatedGradient(clone(base), moment(difference_bound=bound))
                    with harness.stopwatch() as sw:
                        eg.fit(Xtr, ytr, sensitive_features=s)
                    add(f"ExpGrad {name} {bound:g}", eg, sw["seconds"], 0,
                        fits=int(eg.n_oracle_calls_),
                        predict=lambda X, eg=eg: eg.predict(X, random_state=args.seed))
                to = ThresholdOptimizer(
                    estimator=plain, prefit=True, predict_method="predict_proba",
                    constraints="demographic_parity" if name == "dp" else "true_positive_rate_parity",
                )
                with harness.stopwatch() as sw:
                    to.fit(Xtr, ytr, sensitive_features=s)
                add(f"ThresholdOptimizer {name}", to, sw["seconds"], 0, fits=1,
                    predict=lambda X, to=to: to.predict(X, sensitive_features=ste,
                                                        random_state=args.seed))
            rows += out
    return rows


def surrogate(args) -> list[dict]:
    """RandomForest on Adult's full train subset, cleaned for demographic
    parity through a LogisticRegression surrogate, against random removal of
    as many rows and Kamiran-Calders weights on the same forest (test subset)."""
    from sklearn.base import clone
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from skinfluence import InfluenceFilter
    from skinfluence.baselines import reweighing_weights

    Xtr, ytr, s, Xte, yte, ste = _adult_train_test()
    forest = RandomForestClassifier(
        n_estimators=args.trees, min_samples_leaf=5, n_jobs=1, random_state=args.seed
    )
    rows = []
    with harness.stopwatch() as sw:
        base = clone(forest).fit(Xtr, ytr)
    rows.append(_fair_row("forest", base, Xte, yte, ste, sw["seconds"], 0))
    with harness.stopwatch() as sw:
        kc = clone(forest).fit(Xtr, ytr, sample_weight=reweighing_weights(ytr, sensitive_features=s))
    rows.append(_fair_row("Kamiran-Calders", kc, Xte, yte, ste, sw["seconds"], len(ytr)))
    for ratio in args.ratios:
        for action in ("remove", "reweight"):
            flt = InfluenceFilter(
                forest, surrogate=LogisticRegression(max_iter=1000), objective="fairness",
                prune_ratio=ratio, action=action, refit_on="all", random_state=args.seed,
            )
            with harness.stopwatch() as sw:
                flt.fit(Xtr, ytr, sensitive_features=s)
            touched = int(np.sum(flt.sample_weight_ < 1))  # refit_on="all": the rest weigh 1
            rows.append(_fair_row(f"surrogate {action} {ratio:g}", flt, Xte, yte, ste,
                                  sw["seconds"], touched))
            if action == "remove":  # random removal of as many training rows
                n_drop = len(flt.removed_indices_)
                keep = np.ones(len(ytr), bool)
                keep[np.random.RandomState(args.seed).choice(len(ytr), n_drop, replace=False)] = False
                rnd = clone(forest).fit(Xtr[keep], ytr[keep])
                rows.append(_fair_row(f"random remove {ratio:g}", rnd, Xte, yte, ste, 0.0, n_drop))
            harness.log(f"{rows[-1]}")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["speed", "scale", "lds", "surrogate", "fairness"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=30_000)
    parser.add_argument("--n-val", type=int, default=6_000)
    parser.add_argument("--n-rows", type=int, default=1_000_000)
    parser.add_argument("--trees", type=int, default=None)
    parser.add_argument("--leaves", type=int, default=31)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--halves", type=int, default=100)
    parser.add_argument("--data", nargs="+", default=["adult", "compas"])
    parser.add_argument("--models", nargs="+", default=["lightgbm", "hgb"])
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.02, 0.05, 0.1])
    parser.add_argument("--methods", nargs="+",
                        default=["ip", "influence_function", "boostin", "loss"])
    args = parser.parse_args(argv)
    defaults = {"speed": 200, "scale": 500, "lds": 100, "surrogate": 100, "fairness": 100}
    args.trees = args.trees or defaults[args.part]
    threads = harness.set_threads(args.threads)
    harness.log(f"torch threads: {threads}")
    parts = {"speed": speed, "scale": scale, "lds": lds, "surrogate": surrogate,
             "fairness": fairness}
    rows = parts[args.part](args)
    header = "\n".join(harness.run_header("bench_trees.py", argv))
    for row in rows:
        row["run"] = header.splitlines()[0][2:]
    path = RESULTS / f"trees_{args.part}.csv"
    harness.append_csv(path, rows, list(rows[0]))
    harness.log(f"appended {len(rows)} rows to {path}")


if __name__ == "__main__":
    sys.exit(main())
