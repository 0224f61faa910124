"""Counterfactual benchmark: do influence scores predict what retraining does?

On Adult and COMPAS subsamples, for LogisticRegression and a skorch MLP, a
model fitted on the training rows is scored by every method (skinfluence's;
dattri's TRAK and CG influence function and captum's TracInCP as peers) for
two validation objectives (utility: mean cross-entropy; fairness: the soft
demographic-parity gap of ``skinfluence.objectives.Fairness``), each scoring
call timed. Then the model is retrained on random halves of the rows (LDS)
and without each method's most harmful and most helpful rows (leave-k-out).

Writes ``results/<out>_{methods,retrain,ceiling,loo}.csv`` (``<out>``:
``counterfactual``, ``counterfactual_quick`` with ``--quick``);
``benchmarks/report.py counterfactual`` renders the tables and
``benchmarks/README.md`` says what they show. The time of our TRAK against
dattri's and the influence function's CG on a larger MLP are measured by
``bench_counterfactual_cost.py``. Public API only.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
import torch
from bench_counterfactual_peers import (
    captum_tracin,
    dattri_cg,
    dattri_tasks,
    dattri_trak,
)
from harness import (
    encode,
    load_dataset,
    log,
    make_logreg,
    make_mlp,
    set_threads,
    split_rows,
    timed,
    write_csv,
)

from skinfluence import TRAK, as_torch_model, compute_influence
from skinfluence.methods import InfluenceFunction, IPEnsemble, SelfInfluence
from skinfluence.metrics import lds_noise_ceiling, linear_datamodeling_score
from skinfluence.objectives import Fairness, Utility

OBJECTIVES = ("utility", "fairness")
COMBOS = [(d, m) for m in ("logreg", "mlp") for d in ("compas", "adult")]


def config(quick: bool) -> dict:
    return {
        "n_train": 400 if quick else 3000,
        "n_val": 300 if quick else 1000,
        "n_subsets": 8 if quick else 100,
        "retrain_seeds": [100, 101] if quick else [100, 101, 102],
        "loo_fraction": 0.05,
        "mlp_epochs": 3 if quick else 20,
        "logreg_C": 1.0,
        "if_cg_max_iter": 50 if quick else 200,
        "proj_dim": {"logreg": 64, "mlp": 512},  # TRAK caps it at the parameters
        "repeats": 1 if quick else 3,
        "dattri_cg_max_iter": 50,
    }


def cli(description: str) -> argparse.ArgumentParser:
    """The options both counterfactual scripts take."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="smoke test (COMPAS, < 2 min)")
    ap.add_argument("--datasets", nargs="+", choices=["adult", "compas"])
    ap.add_argument("--models", nargs="+", choices=["logreg", "mlp"])
    ap.add_argument("--out", default=None, help="CSV stem under results/")
    ap.add_argument("--threads", type=int, default=1)
    return ap


def combos(args) -> list[tuple[str, str]]:
    datasets = args.datasets or (["compas"] if args.quick else ["compas", "adult"])
    return [(d, m) for d, m in COMBOS if d in datasets and m in (args.models or [m])]


# ------------------------------------------------------------ data, models
def load_split(name: str, cfg: dict):
    """Encoded float32 ``(Xtr, ytr, Xva, yva, sva)``, stratified by label x group."""
    if name == "adult":
        X, y, s = load_dataset("adult", subset="train")
    else:
        X, y, s = load_dataset("compas", two_races=True)
    strata = np.char.add(y.astype(str), s)
    tr, rest = split_rows(strata, cfg["n_train"], None, 0)
    va = rest[split_rows(strata[rest], cfg["n_val"], None, 0)[0]]
    Xtr, Xva = encode(X.iloc[tr], X.iloc[va])
    return Xtr, y[tr], Xva, y[va], s[va]


def subsets_of(n: int, cfg: dict, dataset: str) -> np.ndarray:
    """The ``n_subsets`` random halves (a bool mask per row), seeded per data set."""
    rng = np.random.RandomState(1234 + sum(map(ord, dataset)))
    out = np.zeros((cfg["n_subsets"], n), dtype=bool)
    for m in range(cfg["n_subsets"]):
        out[m, rng.permutation(n)[: int(round(0.5 * n))]] = True
    return out


def fit(model: str, X, y, seed: int, cfg: dict, *, checkpoints: bool = False):
    torch.manual_seed(seed)
    if model == "logreg":
        return make_logreg(cfg["logreg_C"]).fit(X, y)
    net = make_mlp(
        X.shape[1], hidden=[32], lr=0.01, momentum=0.9, batch_size=128,
        epochs=cfg["mlp_epochs"], checkpoints=checkpoints,
    )  # fmt: skip
    return net.fit(X, y)


def bind(objective: str, model, Xva, yva, sva):
    """The package's objective bound to a model's adapter on the validation rows."""
    if objective == "utility":
        return Utility().bind(model, Xva, yva)
    return Fairness().bind(model, Xva, yva, sensitive_features=sva)


def measure(est, Xva, yva, sva) -> dict:
    """Utility (mean cross-entropy) and soft DP gap of a fitted model."""
    p = np.clip(est.predict_proba(Xva)[:, 1].astype(float), 1e-12, 1 - 1e-12)
    ce = -np.mean(np.where(yva == 1, np.log(p), np.log1p(-p)))
    gap = bind("fairness", as_torch_model(est), Xva, yva, sva).value()
    return {"utility": float(ce), "fairness": gap}


# ---------------------------------------------------------------- methods
def cg_if(**kw) -> InfluenceFunction:
    """CG influence function that warns, keeping the partial solve, where it would raise."""
    return InfluenceFunction(solver="cg", on_unconverged="warn", **kw)


def our_methods(model: str, cfg: dict) -> list[tuple[str, object, bool]]:
    """``(label, method, objective-free)`` of the skinfluence methods to run."""
    out = [
        ("ip", "ip", False),
        ("ip_ensemble", IPEnsemble(n_members=10, max_dropout=0.01), False),
    ]
    if model == "mlp":
        out.append(("tracin", "tracin", False))
        for c in ("hessian", "ggn"):  # damping relative: lambda = damping x trace / P
            method = cg_if(damping="auto", max_iter=cfg["if_cg_max_iter"], curvature=c)
            out.append((f"influence_function ({c}, cg, damping auto)", method, False))
    else:
        exact = InfluenceFunction(solver="exact", damping=0.0)
        out.append(("influence_function (exact)", exact, False))
        ggn = cg_if(damping="auto", curvature="ggn")
        out.append(("influence_function (ggn, cg, damping auto)", ggn, False))
    k = cfg["proj_dim"][model]
    out += [
        ("trak (1 member)", TRAK(k, 1), False),
        ("trak (5 members)", TRAK(k, 5), False),
    ]
    self_inf = "self_influence" if model == "mlp" else SelfInfluence()
    return out + [(x, self_inf if x == "self_influence" else x, True)
                  for x in ("self_influence", "loss", "random")]  # fmt: skip


def score_ours(est, method, objective, data):
    Xtr, ytr, Xva, yva, sva = data
    return compute_influence(
        est, Xtr, ytr, Xva, yva, objective=objective, method=method,
        sensitive_features_val=sva, batch_size=4096, random_state=0,
    )  # fmt: skip


def fitted(est, method, objective, data, rows=slice(None)):
    """``method`` after ``Method.score`` (public), to read its fitted attributes.

    The steps of ``compute_influence``, which clones the method: the model's
    adapter, the bound objective, the prepared rows.
    """
    Xtr, ytr, Xva, yva, sva = data
    model = as_torch_model(est)
    J = bind(objective, model, Xva, yva, sva)
    X, y = model.prepare_X(Xtr[rows]), model.prepare_y(ytr[rows])
    method.score(model, J, X, y, batch_size=4096, random_state=0)
    return method


def trak_dim(est, proj_dim: int, data) -> int:
    """The dimension ``TRAK(proj_dim)`` projects to on ``est`` (its ``proj_dim_``)."""
    return fitted(est, TRAK(proj_dim), "utility", data, rows=slice(0, 2)).proj_dim_


class Recorder:
    """Catches the warnings and exceptions of a scoring call, for the notes column."""

    def __init__(self):
        self.notes = []

    def run(self, fn):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = fn()
            except Exception as exc:  # noqa: BLE001 - recorded in the CSV
                self.notes.append(f"error: {type(exc).__name__}: {exc}"[:300])
                out = None
        for w in caught:
            note = f"{w.category.__name__}: {str(w.message).splitlines()[0][:200]}"
            skip = issubclass(w.category, DeprecationWarning) or "require grad" in note
            if not skip and note not in self.notes:
                self.notes.append(note)
        return out


# ------------------------------------------------------------------ peers
def peer_methods(model: str, cfg: dict, k: int) -> list[tuple[str, object]]:
    """``(label, function of the dattri tasks)``; ``k`` the TRAK dimension."""
    it = cfg["dattri_cg_max_iter"]
    out = [
        ("dattri TRAK (1 checkpoint)", lambda t: dattri_trak(t, k)),
        ("dattri TRAK, loss gradients (1 checkpoint)",
         lambda t: dattri_trak(t, k, "trak_loss")),
    ]  # fmt: skip
    for d in ("1e-3", "0.1") if model == "mlp" else ("0",):
        out.append(
            (
                f"dattri CG (damping {d}, {it} it.)",
                lambda t, d=d: dattri_cg(t, float(d), it),
            )
        )
    return out


# ---------------------------------------------------------------- stages
def score_all(dataset, model, est, data, cfg) -> tuple[dict, list[dict]]:
    """Every method's scores per objective, and one timed row per (objective, method)."""
    scores, rows = {}, []
    k = trak_dim(est, cfg["proj_dim"][model], data)

    def keep(label, family, objective, fn, free=False):
        row = {"dataset": dataset, "model": model, "objective": objective,
               "method": label, "family": family, "seconds": None,
               "other_load": None, "lds": None, "notes": ""}  # fmt: skip
        rows.append(row)
        if free and objective != OBJECTIVES[0]:  # objective-free: computed once
            scores[objective, label] = scores[OBJECTIVES[0], label]
            return
        rec = Recorder()
        tm = timed(lambda: rec.run(fn), repeats=cfg["repeats"])
        row["notes"] = "; ".join(rec.notes)
        ok = tm.result is not None
        scores[objective, label] = np.asarray(tm.result, float) if ok else None
        if ok:
            row.update(seconds=tm.best, other_load=tm.other_at_best)
        log(f"  {label} [{objective}] " + (f"{tm.best:.3f} s" if ok else rec.notes[0]))

    for objective in OBJECTIVES:
        for label, method, free in our_methods(model, cfg):
            fn = lambda m=method, o=objective: score_ours(est, m, o, data)  # noqa: E731
            keep(label, "skinfluence", objective, fn, free)
        tasks = dattri_tasks(est, model, objective, data, cfg["logreg_C"])
        for label, fn in peer_methods(model, cfg, k):
            keep(label, "dattri", objective, lambda fn=fn, t=tasks: fn(t))
        if model == "mlp" and objective == "utility":
            keep("captum TracInCP (checkpoints)", "captum", objective,
                 lambda: captum_tracin(est, data))  # fmt: skip
    return scores, rows


def retrain_subsets(dataset, model, data, subsets, cfg) -> pd.DataFrame:
    """The objectives after retraining on each subset with each seed."""
    Xtr, ytr, Xva, yva, sva = data
    rows = []
    for m, mask in enumerate(subsets):
        for seed in cfg["retrain_seeds"]:
            est = fit(model, Xtr[mask], ytr[mask], seed, cfg)
            rows.append({"dataset": dataset, "model": model, "subset": m, "seed": seed,
                         "n_kept": int(mask.sum()), **measure(est, Xva, yva, sva)})  # fmt: skip
        if (m + 1) % 10 == 0:
            log(f"  subsets {m + 1}/{len(subsets)}")
    return pd.DataFrame(rows)


def leave_k_out(dataset, model, scores, data, cfg) -> list[dict]:
    """Refits without each method's k most harmful and k most helpful rows."""
    Xtr, ytr, Xva, yva, sva = data
    n = len(ytr)
    k = max(1, int(cfg["loo_fraction"] * n))
    seeds = cfg["retrain_seeds"]
    full = {s: measure(fit(model, Xtr, ytr, s, cfg), Xva, yva, sva) for s in seeds}
    rows = []
    for (objective, label), s in scores.items():
        if s is None or not np.all(np.isfinite(s)):
            continue
        order = np.argsort(s, kind="mergesort")
        for direction, idx in (("harmful", order[:k]), ("helpful", order[-k:])):
            keep = np.ones(n, dtype=bool)
            keep[idx] = False
            for seed in seeds:
                j = measure(fit(model, Xtr[keep], ytr[keep], seed, cfg), Xva, yva, sva)
                rows.append({"dataset": dataset, "model": model, "objective": objective,
                             "method": label, "direction": direction, "k": k,
                             "seed": seed, "j_full": full[seed][objective],
                             "j_removed": j[objective],
                             "predicted": float(s[idx].sum() / n)})  # fmt: skip
    return rows


def run_combo(dataset, model, cfg) -> dict:
    """The rows of every CSV for one data set and model."""
    log(f"== {dataset} / {model}")
    data = load_split(dataset, cfg)
    Xtr, ytr, *_ = data
    est = fit(model, Xtr, ytr, 0, cfg, checkpoints=(model == "mlp"))
    scores, methods = score_all(dataset, model, est, data, cfg)
    subsets = subsets_of(len(ytr), cfg, dataset)
    retrain = retrain_subsets(dataset, model, data, subsets, cfg)
    ceiling = []
    means = {o: retrain.groupby("subset")[o].mean().sort_index() for o in OBJECTIVES}
    for row in methods:
        s, mean = scores[row["objective"], row["method"]], means[row["objective"]]
        if s is not None and np.all(np.isfinite(s)):
            kept = subsets[mean.index.to_numpy()]
            row["lds"] = linear_datamodeling_score(s, kept, mean.to_numpy())
    for objective in OBJECTIVES:
        by_seed = retrain.pivot(index="subset", columns="seed", values=objective)
        ceiling.append({"dataset": dataset, "model": model, "objective": objective,
                        "ceiling": lds_noise_ceiling(by_seed.to_numpy())})  # fmt: skip
    loo = leave_k_out(dataset, model, scores, data, cfg)
    return {"methods": methods, "retrain": retrain.to_dict("records"),
            "ceiling": ceiling, "loo": loo}  # fmt: skip


def main(argv=None) -> None:
    args = cli(__doc__.splitlines()[0]).parse_args(argv)
    set_threads(args.threads)
    cfg = config(args.quick)
    out = args.out or ("counterfactual_quick" if args.quick else "counterfactual")
    frames = {"methods": [], "retrain": [], "ceiling": [], "loo": []}
    for dataset, model in combos(args):
        for key, rows in run_combo(dataset, model, cfg).items():
            frames[key] += rows
            write_csv(f"{out}_{key}", pd.DataFrame(frames[key]), argv=argv)


if __name__ == "__main__":
    main()
