"""Demographic-parity cleanup against reweighing and fairlearn, under the protocol.

Run from the repository root (one data set and model per call; each call
writes ``results/fairness_<data>_<model>.csv``, ``report.py fairness``
gathers them)::

    python benchmarks/bench_fairness.py --data adult --model mlp
    python benchmarks/bench_fairness.py --data compas --model logreg --seeds 0 1 2

The protocol (issue 17): the whole training set (Adult: every row of the
``"train"`` file, 30,162; COMPAS, African-American and Caucasian rows: a
stratified 70% by the seed), never a subsample; the held-out rows (Adult's
``"test"`` file, 15,060 rows; COMPAS's other 30%) choose nothing. Every choice
of the configuration was made on LogisticRegression (development seed 100,
selection rows carved out of Adult's train file); the two nets and LightGBM
were used for no choice. Per bound in {0.01, 0.02, 0.05, 0.1}:
``skinfluence.fairness_front`` (``method="influence_function"``, the filter's
defaults otherwise, ``prune_ratio=0.2`` as the cap) with its baselines on the
same rows (the model unchanged, Kamiran-Calders weights, fairlearn's
ExponentiatedGradient at each bound, ThresholdOptimizer), and ours alone at
0.15 (where ExponentiatedGradient's bound 0.1 lands); fits and seconds for
every point. One torch thread.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import harness
import numpy as np
import pandas as pd
import torch
from joblib import Memory

from skinfluence import fairness_front

BOUNDS = (0.01, 0.02, 0.05, 0.1)
#: a bound of ours alone: ExponentiatedGradient at bound 0.1 lands near a gap of
#: 0.15 on Adult, and our front needs a point there to be compared with it
OURS_ONLY = (0.15,)
MODELS = ("logreg", "mlp", "mlp2", "lgbm")
#: the model every choice was made on; the others are reported on only
CHOICE = "logreg"


def data(name: str, seed: int):
    """``(X, y, s)`` to clean and held-out ``(X_test, y_test, s_test)``, encoded."""
    if name == "adult":
        X, y, s = harness.load_dataset("adult", subset="train")
        Xt, yt, st = harness.load_dataset("adult", subset="test")
    else:
        X, y, s = harness.load_dataset("compas", two_races=True)
        strata = np.char.add(y.astype(str), s)
        tr, te = harness.split_rows(strata, 0.7, None, seed)
        X, Xt, y, yt, s, st = X.iloc[tr], X.iloc[te], y[tr], y[te], s[tr], s[te]
    X, Xt = harness.encode(X, Xt)
    return (X, y, s), (Xt, yt, st)


def model(kind: str, n_in: int, seed: int, quick: bool = False):
    """The unfitted classifier: the benchmarks' LogisticRegression, the SGD net
    (1x64, momentum 0.9, 20 epochs), the Adam net (2x128, 10 epochs) or
    LightGBM (100 trees of 31 leaves)."""
    epochs = 2 if quick else None
    if kind == "logreg":
        return harness.make_logreg()
    if kind == "mlp":
        return harness.make_mlp(n_in, hidden=(64,), lr=0.01, momentum=0.9,
                                batch_size=256, epochs=epochs or 20)  # fmt: skip
    if kind == "mlp2":
        from skorch import NeuralNetClassifier

        return NeuralNetClassifier(
            harness.MLP, module__n_in=n_in, module__hidden=(128, 128),
            criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
            batch_size=256, max_epochs=epochs or 10, train_split=None,
            iterator_train__shuffle=True, verbose=0,
        )  # fmt: skip
    import lightgbm as lgb

    return lgb.LGBMClassifier(n_estimators=10 if quick else 100, num_leaves=31,
                              random_state=seed, verbose=-1, n_jobs=1)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=("adult", "compas"), default="adult")
    parser.add_argument("--model", choices=MODELS, default="logreg")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, 2 bounds: a smoke run")
    parser.add_argument("--out", default=None, help="CSV name (default fairness_<data>_<model>)")
    args = parser.parse_args()
    harness.set_threads(1)
    bounds = BOUNDS[2:] if args.quick else BOUNDS
    frames = []
    for seed in args.seeds:
        (X, y, s), (Xt, yt, st) = data(args.data, seed)
        if args.model == "logreg":
            X, Xt = X.astype(np.float64), Xt.astype(np.float64)
        torch.manual_seed(seed)
        est = model(args.model, X.shape[1], seed, args.quick)
        common = dict(X_test=Xt, y_test=yt, sensitive_features_test=st, prune_ratio=0.2,
                      random_state=seed, method="influence_function")  # fmt: skip
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
            warnings.simplefilter("ignore", FutureWarning)
            memory = Memory(tmp, verbose=0)  # shared by both calls: the first fit once
            front = fairness_front(est, X, y, sensitive_features=s, bounds=bounds,
                                   baselines=True, memory=memory, **common)  # fmt: skip
            more = fairness_front(est, X, y, sensitive_features=s, bounds=OURS_ONLY,
                                  memory=memory, **common)  # fmt: skip
        front = pd.concat([more, front], ignore_index=True)
        front.insert(0, "data", args.data)
        front.insert(1, "model", args.model)
        front.insert(2, "role", "choice" if args.model == CHOICE else "report")
        front.insert(3, "seed", seed)
        front.insert(4, "n_rows", len(y))
        harness.log("\n" + front.round(4).to_string(index=False))
        frames.append(front)
    name = args.out or f"fairness_{args.data}_{args.model}"
    harness.write_csv(name, pd.concat(frames, ignore_index=True))


if __name__ == "__main__":
    main()
