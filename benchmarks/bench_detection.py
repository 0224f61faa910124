"""Detection benchmark: which signal finds mislabeled and anomalous rows.

Run from the repository root (what it measures: ``benchmarks/README.md``)::

    python benchmarks/bench_detection.py            # full run -> results/detection.csv
    python benchmarks/bench_detection.py --quick    # 1 seed, small data
    python benchmarks/report.py detection           # the tables: results/detection.md

Per data set, corruption scenario and detector (every signal of
``compute_signals``, cleanlab's ranking and its own flags): F1 with the top
``floor(c n)`` rows flagged and ROC AUC against the mask of corrupted rows,
mean and sample std over the seeds. The signals ``instability`` and
``relative_instability`` were designed on development seeds 100 and 101,
never on the evaluation seeds 0-4.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch
from harness import (
    cleanlab_ranking,
    encoded_width,
    load_dataset,
    log,
    make_mlp,
    set_threads,
    split_rows,
    stopwatch,
    tabular_pipeline,
    write_csv,
)

from skinfluence import compute_signals
from skinfluence.datasets import flip_labels, inject_anomalies
from skinfluence.metrics import detection_f1, detection_roc_auc

SIGNALS = ["self_influence", "aai", "mai", "mi", "gd_class", "loss", "aum",
           "instability", "relative_instability"]  # fmt: skip
# scenario -> (what is corrupted, keyword arguments of the corruption)
CORRUPTIONS = {
    "uniform": ("labels", {"kind": "uniform"}),
    "class": ("labels", {"kind": "class"}),
    "anomaly_far": ("rows", {"kind": "far"}),
    "anomaly_clustered": ("rows", {"kind": "clustered"}),
    "anomaly_clustered_label": ("rows", {"kind": "clustered", "label": "cluster"}),
}
RATE = 0.10


def load(name: str, n_train: int | None, n_val: int, seed: int):
    """Clean train and validation rows, stratified by label, sampled with ``seed``."""
    X, y, _ = load_dataset(name)
    tr, va = split_rows(y, n_train, n_val, seed)
    rows = (X.iloc[tr].reset_index(drop=True), y[tr])
    return rows + (X.iloc[va].reset_index(drop=True), y[va])


def corrupt(scenario: str, X, y, seed: int):
    """Corrupted training rows and the mask of corrupted rows."""
    what, kw = CORRUPTIONS[scenario]
    if what == "labels":
        y, mask = flip_labels(y, RATE, random_state=seed, **kw)
    else:
        X, y, mask = inject_anomalies(X, y, RATE, random_state=seed, **kw)
    return X, y, np.asarray(mask, bool)


def make_estimator(X, epochs: int):
    """Preprocessing + skorch MLP d -> 64 -> 2 (unfitted)."""
    width = encoded_width(X)
    net = make_mlp(width, hidden=(64,), lr=0.05, batch_size=64, epochs=epochs)
    return tabular_pipeline(X, net)


def run_one(dataset, scenario, seed, *, n_train, n_val, epochs, with_cleanlab):
    """Per detector ``(f1, auc)`` for one seed; the training rows; the seconds."""
    X, y, X_val, y_val = load(dataset, n_train, n_val, seed)
    X, y, mask = corrupt(scenario, X, y, seed)
    torch.manual_seed(seed)
    with stopwatch() as t_signals:
        scores = compute_signals(make_estimator(X, epochs), X, y, X_val, y_val,
                                 signals=SIGNALS, batch_size=512)  # fmt: skip
    out = {k: (detection_f1(mask, scores[k]), detection_roc_auc(mask, scores[k]))
           for k in SIGNALS}  # fmt: skip
    with stopwatch() as t_clean:
        if with_cleanlab:
            quality, flags = cleanlab_ranking(make_estimator(X, epochs), X, y, 5, seed)
            suspect = -quality
            out["cleanlab"] = (detection_f1(mask, suspect), detection_roc_auc(mask, suspect))
            # its own flags: exactly the flagged rows, so contamination = their share
            own = detection_f1(mask, flags.astype(float), contamination=flags.mean())
            out["cleanlab (own flags)"] = (own, np.nan)
    return out, len(y), (t_signals["seconds"], t_clean["seconds"])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, small data")
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--datasets", nargs="*", default=["adult", "compas"])
    parser.add_argument("--n-adult", type=int, default=None)
    parser.add_argument("--no-cleanlab", action="store_true")
    parser.add_argument("--out", help="results name (default detection[_quick])")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (1: small nets gain nothing from more, and several "
        "threads slow down by orders of magnitude on a busy machine)",
    )  # fmt: skip
    return parser.parse_args(argv)


def sizes_of(args) -> dict:
    """Seeds, row counts and epochs of a full or a --quick run."""
    out = {"seeds": [0, 1, 2, 3, 4], "n_adult": 5000, "n_compas": None,
           "n_val": 1000, "epochs": 20}  # fmt: skip
    if args.quick:
        out = {"seeds": [0], "n_adult": 1500, "n_compas": 1500, "n_val": 300,
               "epochs": 10}  # fmt: skip
    out["seeds"] = out["seeds"] if args.seeds is None else args.seeds
    out["n_adult"] = args.n_adult or out["n_adult"]
    return out


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    warnings.filterwarnings("ignore")
    sz = sizes_of(args)
    if not args.no_cleanlab:
        import cleanlab  # noqa: F401  (pip install cleanlab, or --no-cleanlab)
    rows, start = [], time.perf_counter()
    for ds in args.datasets:
        n_train = sz["n_adult"] if ds == "adult" else sz["n_compas"]
        for sc in CORRUPTIONS:
            for seed in sz["seeds"]:
                res, n, (t_sig, t_cl) = run_one(
                    ds, sc, seed, n_train=n_train, n_val=sz["n_val"],
                    epochs=sz["epochs"], with_cleanlab=not args.no_cleanlab,
                )  # fmt: skip
                rows += [{"dataset": ds, "scenario": sc, "detector": k, "seed": seed,
                          "n_train": n, "f1": f1, "auc": auc}
                         for k, (f1, auc) in res.items()]  # fmt: skip
                aucs = " ".join(f"{k}={res[k][1]:.3f}" for k in SIGNALS)
                log(f"{ds} {sc} seed={seed} n={n} signals {t_sig:.1f}s "
                    f"cleanlab {t_cl:.1f}s | AUC {aucs}")  # fmt: skip
    per_seed = pd.DataFrame(rows)
    keys = ["dataset", "scenario", "detector"]
    frame = per_seed.groupby(keys, sort=False).agg(
        n_seeds=("seed", "size"), n_train=("n_train", "max"),
        f1_mean=("f1", "mean"), f1_std=("f1", "std"),
        auc_mean=("auc", "mean"), auc_std=("auc", "std"),
    ).reset_index()  # fmt: skip
    frame.loc[frame.n_seeds == 1, ["f1_std", "auc_std"]] = 0.0
    write_csv(args.out or ("detection_quick" if args.quick else "detection"), frame)
    log(f"{(time.perf_counter() - start) / 60:.1f} min in all")


if __name__ == "__main__":
    main()
