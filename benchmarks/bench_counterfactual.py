"""Counterfactual benchmark: do influence scores predict what retraining does?

For each data set (Adult subsample, COMPAS) and model (LogisticRegression, a
skorch MLP) a model is fitted on the training rows and every method scores
every row, for two validation objectives (utility: mean cross-entropy;
fairness: the soft demographic-parity gap of ``skinfluence.objectives.
Fairness``). Then:

* **LDS.** ``M`` random halves of the training rows, each retrained with
  ``R`` seeds (averaged); the objective of each retrained model is measured
  on the validation rows, and ``skinfluence.metrics.linear_datamodeling_score``
  correlates it with each method's prediction (minus the kept rows' score sum).
* **Leave-k-out.** The ``k`` lowest-scored rows (predicted harmful) and the
  ``k`` highest (predicted helpful) of each method are removed and the model
  retrained (same seeds): the actual change of the objective against the
  full-data refit, and, for the methods whose scores estimate it (influence
  functions, TRAK), the predicted change ``sum(scores[removed]) / n``.
* **Peers.** dattri's ``TRAKAttributor`` and ``IFAttributorCG`` on the same
  models and objectives (the validation objective is dattri's target: one
  "test sample" that is the whole validation set), captum's ``TracInCP``
  (utility, MLP) through ``captum_ref.py``. Times are measured in the same
  process, one after the other, under the same load.
* **Curvature.** ``InfluenceFunction`` on the speed benchmark's Adult MLP:
  whether CG reaches its tolerance at the default damping (relative: 3 x
  trace / P) and its cost in epochs.

The script appends to CSVs under ``benchmarks/results/`` as it goes and
resumes after an interruption; ``--render`` rebuilds the Markdown from them.
It uses the public API only (``compute_influence``, ``skinfluence.methods``,
``skinfluence.objectives``, ``skinfluence.metrics``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import traceback
import warnings
from contextlib import redirect_stderr

import numpy as np
import pandas as pd
import torch
from harness import (
    RESULTS_DIR,
    append_csv,
    checkpoints_of,
    encode,
    fmt_share,
    load_avg,
    load_dataset,
    log,
    make_logreg,
    make_mlp,
    md_table,
    read_csv,
    run_header,
    set_threads,
    split_rows,
    timed,
    write_result,
)

from skinfluence import as_torch_model, compute_influence
from skinfluence.methods import InfluenceFunction, IPEnsemble, SelfInfluence
from skinfluence.metrics import linear_datamodeling_score
from skinfluence.objectives import Fairness, Utility

try:  # the TRAK method lands in a parallel change
    from skinfluence import TRAK
except ImportError:  # pragma: no cover - depends on the library version
    TRAK = None

HAS_CURVATURE = "curvature" in InfluenceFunction().get_params()
DEFAULT_DAMPING = 3.0  # InfluenceFunction's damping="auto" tries this first

OBJECTIVES = ("utility", "fairness")
RUN_ID = time.strftime("%Y%m%d-%H%M%S")  # TRAK timings compare within one run
RETRAIN_COLS = ["dataset", "model", "subset", "seed", "n_kept", "utility", "fairness"]
METHOD_COLS = [
    "dataset", "model", "objective", "method", "family", "seconds", "other_load",
    "lds", "notes",
]  # fmt: skip
LOO_COLS = [
    "dataset", "model", "objective", "method", "direction", "k", "seed",
    "j_full", "j_removed", "predicted",
]  # fmt: skip
CURV_COLS = [
    "run", "setting", "damping", "tol", "seconds", "epoch_seconds", "epochs", "converged",
    "notes", "other_load", "n_iter", "residual", "stop",
]  # fmt: skip
TRAK_COLS = [
    "run", "case", "objective", "proj_dim", "ours_s", "dattri_s", "ours_runs",
    "dattri_runs", "other_load", "load_avg", "floor_s",
]  # fmt: skip


# ------------------------------------------------------------------- config
def config(args) -> dict:
    quick = args.quick
    return {
        "quick": quick,
        "datasets": args.datasets or (["compas"] if quick else ["compas", "adult"]),
        "models": args.models or ["logreg", "mlp"],
        "n_train": 400 if quick else 3000,
        "n_val": 300 if quick else 1000,
        "data_seed": 0,
        "n_subsets": 8 if quick else 100,
        "subset_fraction": 0.5,
        "retrain_seeds": [100, 101] if quick else [100, 101, 102],
        "full_seed": 0,
        "loo_fraction": 0.05,
        "mlp_hidden": [32],
        "mlp_epochs": 3 if quick else 20,
        "mlp_batch": 128,
        "mlp_lr": 0.01,
        "mlp_momentum": 0.9,
        "logreg_C": 1.0,
        "batch_size": 4096,
        "ensemble": {"n_members": 10, "max_dropout": 0.01},
        "if_cg_max_iter": 50 if quick else 200,
        "proj_dim": {"logreg": 64, "mlp": 512},  # at most the number of parameters
        "repeats": 1 if quick else 3,
        "dattri_cg_max_iter": 50,
        "scale": not args.no_scale,
        "scale_rows": 2000 if quick else 30000,
        "scale_val": 500 if quick else 6000,
        "scale_epochs": 1 if quick else 5,
    }


def paths(out: str) -> dict:
    return {
        "retrain": RESULTS_DIR / f"{out}_retrain.csv",
        "methods": RESULTS_DIR / f"{out}_methods.csv",
        "loo": RESULTS_DIR / f"{out}_loo.csv",
        "curv": RESULTS_DIR / f"{out}_curvature.csv",
        "trak": RESULTS_DIR / f"{out}_trak_timing.csv",
        "json": RESULTS_DIR / f"{out}.json",
        "md": RESULTS_DIR / f"{out}.md",
        "cache": RESULTS_DIR / f".{out}_scores",
    }


# --------------------------------------------------------------------- data
def load_split(name: str, cfg: dict):
    """Encoded float32 ``(Xtr, ytr, Xva, yva, sva)`` of a seeded subsample."""
    if name == "adult":
        X, y, s = load_dataset("adult", subset="train")
    else:
        X, y, s = load_dataset("compas", two_races=True)
    strata = np.char.add(y.astype(str), s)
    tr, rest = split_rows(strata, cfg["n_train"], None, cfg["data_seed"])
    va, _ = split_rows(strata[rest], cfg["n_val"], None, cfg["data_seed"])
    va = rest[va]
    Xtr, Xva = encode(X.iloc[tr], X.iloc[va])
    return Xtr, y[tr], Xva, y[va], s[va]


def subsets_of(n: int, cfg: dict, dataset: str) -> np.ndarray:
    """The ``n_subsets`` random halves (bool mask per row), seeded per data set."""
    rng = np.random.RandomState(1234 + sum(map(ord, dataset)))
    keep = int(round(cfg["subset_fraction"] * n))
    out = np.zeros((cfg["n_subsets"], n), dtype=bool)
    for m in range(cfg["n_subsets"]):
        out[m, rng.permutation(n)[:keep]] = True
    return out


# ------------------------------------------------------------------- models
def fit(model: str, X, y, seed: int, cfg: dict, *, checkpoints: bool = False):
    torch.manual_seed(seed)
    if model == "logreg":
        return make_logreg(cfg["logreg_C"]).fit(X, y)
    net = make_mlp(
        X.shape[1],
        hidden=cfg["mlp_hidden"],
        lr=cfg["mlp_lr"],
        momentum=cfg["mlp_momentum"],
        batch_size=cfg["mlp_batch"],
        epochs=cfg["mlp_epochs"],
        checkpoints=checkpoints,
    )
    return net.fit(X, y)


def soft_gap(est, Xva, yva, sva):
    """The package's soft DP gap of a fitted model on the validation rows."""
    return Fairness().bind(as_torch_model(est), Xva, yva, sensitive_features=sva)


def measure(est, Xva, yva, sva) -> dict:
    """Utility (mean cross-entropy) and soft DP gap of a fitted model."""
    p = np.clip(est.predict_proba(Xva)[:, 1].astype(float), 1e-12, 1 - 1e-12)
    ce = -np.mean(np.where(yva == 1, np.log(p), np.log1p(-p)))
    return {"utility": float(ce), "fairness": soft_gap(est, Xva, yva, sva).value()}


def dp_weights(est, Xva, yva, sva) -> np.ndarray:
    """Frozen weights w with J = sum w_r p_r near the fitted model (soft DP gap)."""
    J = soft_gap(est, Xva, yva, sva)
    return J.row_weights(J.model.params, len(yva)).cpu().double().numpy()


# ------------------------------------------------------------------ methods
def n_params(est, model: str, n_features: int) -> int:
    if model == "logreg":
        return n_features + 1
    return sum(p.numel() for p in est.module_.parameters())


def proj_dim(cfg: dict, model: str, P: int) -> int:
    """The TRAK projection dimension: the configured one, at most ``P``."""
    return min(cfg["proj_dim"][model], P)


def our_methods(model: str, cfg: dict, P: int) -> list[tuple[str, object, bool]]:
    """``(label, method, objective-free)`` of the skinfluence methods to run."""
    out = [
        ("ip", "ip", False),
        ("ip_ensemble", IPEnsemble(**cfg["ensemble"]), False),
    ]
    if model == "mlp":
        out.append(("tracin", "tracin", False))
        it = cfg["if_cg_max_iter"]
        # damping is relative (lambda = damping x trace / P); "auto" the default
        for curvature in ("hessian", "ggn") if HAS_CURVATURE else ("hessian",):
            out.append(
                (f"influence_function ({curvature}, cg, damping auto)",
                 _if(solver="cg", damping="auto", max_iter=it, curvature=curvature),
                 False)
            )  # fmt: skip
    else:
        out.append(
            ("influence_function (exact)",
             InfluenceFunction(solver="exact", damping=0.0), False)
        )  # fmt: skip
        if HAS_CURVATURE:
            out.append(
                ("influence_function (ggn, cg, damping auto)",
                 _if(solver="cg", damping="auto", curvature="ggn"), False)
            )  # fmt: skip
    if TRAK is not None:
        k = proj_dim(cfg, model, P)
        out.append(("trak (1 member)", our_trak(k, 1), False))
        out.append(("trak (5 members)", our_trak(k, 5), False))
    self_inf = "self_influence" if model == "mlp" else SelfInfluence()
    out += [
        ("self_influence", self_inf, True),
        ("loss", "loss", True),
        ("random", "random", True),
    ]
    return out


def our_trak(k: int, n_members: int):
    """TRAK at ``proj_dim=k`` (seeded by compute_influence's random_state)."""
    return TRAK(proj_dim=k, n_members=n_members)


def _if(*, curvature, **kw):
    """InfluenceFunction; where CG can raise, it warns and keeps the partial solve."""
    if HAS_CURVATURE:
        kw.update(curvature=curvature, on_unconverged="warn")
    return InfluenceFunction(**kw)


def score_ours(est, method, objective, data):
    Xtr, ytr, Xva, yva, sva = data
    return compute_influence(
        est, Xtr, ytr, Xva, yva,
        objective=objective, method=method, sensitive_features_val=sva,
        batch_size=4096, random_state=0,
    )  # fmt: skip


class Recorder:
    """Catches warnings and exceptions of a scoring call, for the notes column."""

    def __init__(self):
        self.notes = []

    def run(self, fn):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = fn()
            except Exception as exc:  # noqa: BLE001 - recorded, reported
                self.notes.append(f"error: {type(exc).__name__}: {exc}"[:300])
                out = None
        for w in caught:
            msg = str(w.message).splitlines()[0][:200]
            if "did not already require gradients" in msg or issubclass(
                w.category, DeprecationWarning
            ):
                continue
            note = f"{w.category.__name__}: {msg}"
            if note not in self.notes:
                self.notes.append(note)
        return out


# ------------------------------------------------------------------- dattri
def dattri_task(est, model: str, objective: str, data, cfg: dict):
    """dattri's ``AttributionTask`` for the fitted model and objective.

    The training loss is the mean cross-entropy of the rows (plus the
    LogisticRegression's L2 term ``||w||^2 / (2 C n)`` in the CG task: the
    Hessian skinfluence's influence function inverts); the target is the
    validation objective, with the whole validation set as one sample.
    """
    from dattri.task import AttributionTask
    from torch.func import functional_call
    from torch.nn import functional as F

    Xtr, ytr, Xva, yva, sva = data
    if model == "logreg":
        d = Xtr.shape[1]
        module = torch.nn.Linear(d, 1)
        state = {
            "weight": torch.as_tensor(est.coef_, dtype=torch.float32),
            "bias": torch.as_tensor(est.intercept_, dtype=torch.float32),
        }
        lam = 1.0 / (cfg["logreg_C"] * len(Xtr))

        def logp(params, x):
            z = functional_call(module, params, (x,)).squeeze(-1)
            return torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], -1)

        def penalty(params):
            return 0.5 * lam * (params["weight"] ** 2).sum()
    else:
        module = est.module_
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}

        def logp(params, x):
            return F.log_softmax(functional_call(module, params, (x,)), -1)

        def penalty(params):
            return 0.0

    def loss(params, data):
        x, y = data
        lp = logp(params, x)
        return -lp.gather(-1, y.unsqueeze(-1)).mean()

    def loss_l2(params, data):
        return loss(params, data) + penalty(params)

    def target(params, data):
        x, y, w = data
        lp = logp(params, x)
        if objective == "utility":
            return -lp.gather(-1, y.unsqueeze(-1)).mean()
        return (w * lp[..., 1].exp()).sum()

    def correct_p(params, data):
        x, y = data
        return logp(params, x).gather(-1, y.unsqueeze(-1)).exp()

    def margin(params, data):  # TRAK's output function: log(p_y / (1 - p_y))
        x, y = data
        lp = logp(params, x)
        mine = torch.arange(lp.shape[-1]) == y.unsqueeze(-1)
        rest = torch.logsumexp(torch.where(mine, float("-inf"), lp), -1)
        return lp.gather(-1, y.unsqueeze(-1)).squeeze(-1) - rest

    w = dp_weights(est, Xva, yva, sva) if objective == "fairness" else np.zeros(len(yva))
    test = torch.utils.data.TensorDataset(
        torch.as_tensor(Xva)[None],
        torch.as_tensor(yva)[None],
        torch.as_tensor(w, dtype=torch.float32)[None],
    )
    train = torch.utils.data.TensorDataset(torch.as_tensor(Xtr), torch.as_tensor(ytr))
    return {
        "task": AttributionTask(loss_func=loss, model=module, checkpoints=state),
        "task_l2": AttributionTask(
            loss_func=loss_l2, target_func=target, model=module, checkpoints=state
        ),
        "task_trak": AttributionTask(
            loss_func=margin, target_func=target, model=module, checkpoints=state
        ),
        "task_trak_loss": AttributionTask(
            loss_func=loss, target_func=target, model=module, checkpoints=state
        ),
        "correct_p": correct_p,
        "train": train,
        "test": test,
    }


def dattri_trak(t, proj_dim: int, task: str = "task_trak"):
    """dattri's TRAK scores in skinfluence's sign (higher = more beneficial).

    As published (``task="task_trak"``), the training rows' output function
    is the margin ``log(p / (1 - p))``, and dattri's score predicts how much
    including a row raises the target ``J``: minus it is our sign.
    ``task="task_trak_loss"`` (the configuration of runs 1-3) takes the
    rows' loss gradients instead, whose sign is already ours.
    """
    from dattri.algorithm.trak import TRAKAttributor

    loader = torch.utils.data.DataLoader(t["train"], batch_size=500, shuffle=False)
    test = torch.utils.data.DataLoader(t["test"], batch_size=1, shuffle=False)
    att = TRAKAttributor(
        task=t[task],
        correct_probability_func=t["correct_p"],
        device="cpu",
        projector_kwargs={"proj_dim": proj_dim, "proj_seed": 0, "device": "cpu"},
    )
    with warnings.catch_warnings(), redirect_stderr(io.StringIO()):  # tqdm bars
        warnings.simplefilter("ignore")
        att.cache(loader)
        out = att.attribute(test).reshape(-1).detach().numpy().astype(float)
    return -out if task == "task_trak" else out


def dattri_cg(t, damping: float, max_iter: int):
    from dattri.algorithm.influence_function import IFAttributorCG

    full = torch.utils.data.DataLoader(
        t["train"], batch_size=len(t["train"]), shuffle=False
    )
    rows = torch.utils.data.DataLoader(t["train"], batch_size=500, shuffle=False)
    test = torch.utils.data.DataLoader(t["test"], batch_size=1, shuffle=False)
    att = IFAttributorCG(
        task=t["task_l2"], device="cpu", max_iter=max_iter, regularization=damping
    )
    with warnings.catch_warnings(), redirect_stderr(io.StringIO()):  # tqdm bars
        warnings.simplefilter("ignore")
        att.cache(full)
        return att.attribute(rows, test).reshape(-1).detach().numpy().astype(float)


DATTRI_TRAK = "dattri TRAK (1 checkpoint)"


def peer_methods(model: str, cfg: dict, P: int) -> list[tuple[str, object]]:
    it = cfg["dattri_cg_max_iter"]
    k = proj_dim(cfg, model, P)
    out = [
        (DATTRI_TRAK, lambda t: dattri_trak(t, k)),
        ("dattri TRAK, loss gradients (1 checkpoint)",
         lambda t: dattri_trak(t, k, "task_trak_loss")),
    ]  # fmt: skip
    if model == "mlp":
        out += [
            (f"dattri CG (damping 1e-3, {it} it.)", lambda t: dattri_cg(t, 1e-3, it)),
            (f"dattri CG (damping 0.1, {it} it.)", lambda t: dattri_cg(t, 0.1, it)),
        ]
    else:
        out.append(
            (f"dattri CG (damping 0, {it} it.)", lambda t: dattri_cg(t, 0.0, it))
        )
    return out


def captum_tracin(est, data):
    """captum TracInCP on the MLP's checkpoints, mean validation cross-entropy."""
    import captum_ref

    Xtr, ytr, Xva, yva, _ = data
    cks = [(dict(c.params), float(c.learning_rate)) for c in checkpoints_of(est)]
    return captum_ref.tracin_scores(
        est.module_, cks,
        torch.as_tensor(Xtr), torch.as_tensor(ytr),
        torch.as_tensor(Xva), torch.as_tensor(yva), batch_size=512,
    ).astype(float)  # fmt: skip


# --------------------------------------------------------------- the stages
def score_all(dataset, model, est, data, cfg, p, done) -> dict:
    """Scores of every method and objective: cached on disk, timed in the CSV."""
    cache = p["cache"] / f"{dataset}_{model}.npz"
    scores = dict(np.load(cache)) if cache.exists() else {}
    rows = []

    def keep(label, family, objective, fn, free=False):
        key = f"{objective}|{label}"
        if key in scores or (dataset, model, objective, label) in done:
            return
        if free and f"{OBJECTIVES[0]}|{label}" in scores and objective != OBJECTIVES[0]:
            scores[key] = scores[f"{OBJECTIVES[0]}|{label}"]
            rows.append(_method_row(dataset, model, objective, label, family, None, ""))
            return
        rec = Recorder()
        repeats = cfg["repeats"]
        tm = timed(lambda: rec.run(fn), repeats=repeats)
        if tm.result is None:
            log(f"  {label} [{objective}] failed: {rec.notes[:1]}")
            rows.append(
                _method_row(dataset, model, objective, label, family, None,
                            "; ".join(rec.notes))
            )  # fmt: skip
            scores[key] = np.full(len(data[1]), np.nan)
            return
        scores[key] = np.asarray(tm.result, dtype=float)
        log(f"  {label} [{objective}] {tm.best:.3f} s ({tm.runs()})")
        rows.append(
            _method_row(dataset, model, objective, label, family, tm,
                        "; ".join(rec.notes))
        )  # fmt: skip

    P = n_params(est, model, data[0].shape[1])
    for objective in OBJECTIVES:
        for label, method, free in our_methods(model, cfg, P):
            keep(label, "skinfluence", objective,
                 lambda m=method, o=objective: score_ours(est, m, o, data), free)  # fmt: skip
        t = None
        for label, fn in peer_methods(model, cfg, P):
            if t is None:
                t = dattri_task(est, model, objective, data, cfg)
            keep(label, "dattri", objective, lambda fn=fn, t=t: fn(t))
        if model == "mlp" and objective == "utility":
            keep("captum TracInCP (checkpoints)", "captum", objective,
                 lambda: captum_tracin(est, data))  # fmt: skip
        p["cache"].mkdir(parents=True, exist_ok=True)
        np.savez(cache, **scores)
        append_csv(p["methods"], rows, METHOD_COLS)
        rows = []
    return scores


def _method_row(dataset, model, objective, label, family, tm, notes):
    return {
        "dataset": dataset, "model": model, "objective": objective,
        "method": label, "family": family,
        "seconds": None if tm is None else tm.best,
        "other_load": None if tm is None else tm.other_at_best,
        "lds": None, "notes": notes,
    }  # fmt: skip


def retrain_subsets(dataset, model, data, cfg, p) -> pd.DataFrame:
    Xtr, ytr, Xva, yva, sva = data
    subsets = subsets_of(len(ytr), cfg, dataset)
    have = read_csv(p["retrain"], RETRAIN_COLS)
    have = have[(have.dataset == dataset) & (have.model == model)]
    done = set(zip(have.subset, have.seed, strict=True))
    t0 = time.perf_counter()
    for m, mask in enumerate(subsets):
        rows = []
        for seed in cfg["retrain_seeds"]:
            if (m, seed) in done:
                continue
            est = fit(model, Xtr[mask], ytr[mask], seed, cfg)
            rows.append(
                {"dataset": dataset, "model": model, "subset": m, "seed": seed,
                 "n_kept": int(mask.sum()), **measure(est, Xva, yva, sva)}
            )  # fmt: skip
        append_csv(p["retrain"], rows, RETRAIN_COLS)
        if rows and (m + 1) % 10 == 0:
            log(f"  subsets {m + 1}/{len(subsets)} ({time.perf_counter() - t0:.0f} s)")
    have = read_csv(p["retrain"], RETRAIN_COLS)
    return have[(have.dataset == dataset) & (have.model == model)]


def lds_rows(dataset, model, scores, retrain, cfg) -> dict:
    subsets = subsets_of(len(next(iter(scores.values()))), cfg, dataset)
    mean = retrain.groupby("subset")[list(OBJECTIVES)].mean().sort_index()
    out = {}
    for key, s in scores.items():
        objective, label = key.split("|", 1)
        if np.any(~np.isfinite(s)):
            out[(objective, label)] = float("nan")
            continue
        measured = mean[objective].to_numpy()
        out[(objective, label)] = linear_datamodeling_score(
            s, subsets[mean.index.to_numpy()], measured
        )
    return out


def leave_k_out(dataset, model, scores, data, cfg, p) -> None:
    Xtr, ytr, Xva, yva, sva = data
    n = len(ytr)
    k = max(1, int(cfg["loo_fraction"] * n))
    have = read_csv(p["loo"], LOO_COLS)
    have = have[(have.dataset == dataset) & (have.model == model)]
    done = set(zip(have.objective, have.method, have.direction, have.seed, strict=True))
    full = {s: measure(fit(model, Xtr, ytr, s, cfg), Xva, yva, sva)
            for s in cfg["retrain_seeds"]}  # fmt: skip
    for key, s in scores.items():
        objective, label = key.split("|", 1)
        if np.any(~np.isfinite(s)):
            continue
        order = np.argsort(s, kind="mergesort")
        for direction, idx in (("harmful", order[:k]), ("helpful", order[-k:])):
            rows = []
            for seed in cfg["retrain_seeds"]:
                if (objective, label, direction, seed) in done:
                    continue
                keep = np.ones(n, dtype=bool)
                keep[idx] = False
                j = measure(fit(model, Xtr[keep], ytr[keep], seed, cfg), Xva, yva, sva)
                rows.append(
                    {"dataset": dataset, "model": model, "objective": objective,
                     "method": label, "direction": direction, "k": k, "seed": seed,
                     "j_full": full[seed][objective], "j_removed": j[objective],
                     "predicted": float(s[idx].sum() / n)}
                )  # fmt: skip
            append_csv(p["loo"], rows, LOO_COLS)


def run_combo(dataset, model, cfg, p) -> None:
    log(f"== {dataset} / {model}")
    data = load_split(dataset, cfg)
    Xtr, ytr, Xva, yva, sva = data
    est = fit(model, Xtr, ytr, cfg["full_seed"], cfg, checkpoints=(model == "mlp"))
    methods = read_csv(p["methods"], METHOD_COLS)
    sel = methods[(methods.dataset == dataset) & (methods.model == model)]
    done = set(zip(sel.dataset, sel.model, sel.objective, sel.method, strict=True))
    scores = score_all(dataset, model, est, data, cfg, p, done)
    retrain = retrain_subsets(dataset, model, data, cfg, p)
    lds = lds_rows(dataset, model, scores, retrain, cfg)
    methods = read_csv(p["methods"], METHOD_COLS)
    for (objective, label), v in lds.items():
        hit = (
            (methods.dataset == dataset) & (methods.model == model)
            & (methods.objective == objective) & (methods.method == label)
        )  # fmt: skip
        methods.loc[hit, "lds"] = v
    methods.to_csv(p["methods"], index=False)
    log(f"  LDS written ({len(lds)} method x objective)")
    leave_k_out(dataset, model, scores, data, cfg, p)
    log(f"  leave-k-out done for {dataset} / {model}")
    have = read_csv(p["trak"], TRAK_COLS)
    k = proj_dim(cfg, model, n_params(est, model, Xtr.shape[1]))
    for objective in OBJECTIVES:
        case = f"{dataset}-{model}"
        if not ((have.run == RUN_ID) & (have.case == case)
                & (have.objective == objective)).any():  # fmt: skip
            time_trak(case, est, model, objective, data, cfg, p, k)


def time_trak(case, est, model, objective, data, cfg, p, k: int) -> None:
    """Our TRAK and dattri's at equal proj_dim, one model, interleaved runs."""
    if TRAK is None:
        return
    task = dattri_task(est, model, objective, data, cfg)
    ours, theirs = [], []
    rec = Recorder()
    floor = []
    P = n_params(est, model, data[0].shape[1])
    for _ in range(cfg["repeats"]):
        t1 = timed(
            lambda: rec.run(lambda: score_ours(est, our_trak(k, 1), objective, data))
        )
        t2 = timed(lambda: rec.run(lambda: dattri_trak(task, k)))
        ours.append(t1)
        theirs.append(t2)
        floor.append(timed(lambda: projection_floor(len(data[1]), P, k)).best)
    if any(t.result is None for t in ours + theirs):
        log(f"  TRAK timing failed: {rec.notes}")
        return
    sec_o = [t.seconds[0] for t in ours]
    sec_d = [t.seconds[0] for t in theirs]
    loads = [t.other[0] for t in ours + theirs if t.other[0] is not None]
    row = {
        "run": RUN_ID, "case": case, "objective": objective, "proj_dim": k,
        "ours_s": min(sec_o), "dattri_s": min(sec_d),
        "ours_runs": " ".join(f"{x:.3f}" for x in sec_o),
        "dattri_runs": " ".join(f"{x:.3f}" for x in sec_d),
        "other_load": float(np.mean(loads)) if loads else None,
        "load_avg": load_avg(), "floor_s": min(floor),
    }  # fmt: skip
    log(
        f"  TRAK {case} {objective}: ours {min(sec_o):.3f} s, dattri {min(sec_d):.3f} s"
    )
    append_csv(p["trak"], [row], TRAK_COLS)


def projection_floor(n: int, P: int, k: int, chunk: int = 2048) -> None:
    """The dense projection both TRAKs do: ``n x P`` gradients times ``P x k``.

    Random rows in chunks of ``chunk`` against one Gaussian ``P x k`` matrix
    (float32, the drawing of the chunks excluded): a lower bound for any
    TRAK with a dense projection at this ``proj_dim``.
    """
    R = torch.randn(P, k)
    G = torch.randn(min(chunk, n), P)
    done = 0
    while done < n:
        m = min(chunk, n - done)
        G[:m] @ R
        done += m


def cg_scores(net, method, data):
    """Score through ``Method.score`` (public) to read the fitted ``cg_info_``.

    The same steps as ``compute_influence`` (which clones the method):
    adapter, bound utility objective, prepared rows, then ``score``.
    """
    Xtr, ytr, Xva, yva, _ = data
    model = as_torch_model(net)
    J = Utility().bind(model, Xva, yva)
    method.score(model, J, model.prepare_X(Xtr), model.prepare_y(ytr), batch_size=4096)
    return method


def run_scale(cfg, p) -> None:
    """The speed benchmark's Adult MLP: CG convergence and cost, TRAK timing."""
    have = read_csv(p["curv"], CURV_COLS)
    have = have[have.run == RUN_ID]
    # relative dampings (lambda = damping x trace / P); 3 is "auto"'s first
    settings = [("hessian", DEFAULT_DAMPING, 1e-6)]
    if HAS_CURVATURE:
        settings = [
            ("ggn", DEFAULT_DAMPING, 1e-6), ("ggn", 0.3, 1e-6),
            ("ggn", DEFAULT_DAMPING, 1e-3), *settings,
        ]  # fmt: skip
    todo = [
        sd for sd in settings
        if not ((have.setting == sd[0]) & (have.damping == sd[1])
                & (have.tol == sd[2])).any()
    ]  # fmt: skip
    trak_have = read_csv(p["trak"], TRAK_COLS)
    trak_todo = (
        TRAK is not None
        and not ((trak_have.run == RUN_ID) & (trak_have.case == "adult-30k-mlp")).any()
    )
    if not todo and not trak_todo:
        return
    n = cfg["scale_rows"]
    log(f"== scale: Adult MLP 104-128-128-2, {n} rows, {cfg['scale_epochs']} epochs")
    X, y, s = load_dataset("adult", subset="train")
    Xte, yte, ste = load_dataset("adult", subset="test")
    tr = np.random.RandomState(0).permutation(len(y))[:n]
    va = np.random.RandomState(0).permutation(len(yte))[: cfg["scale_val"]]
    Xtr, Xva = encode(X.iloc[tr], Xte.iloc[va])
    data = (Xtr, y[tr], Xva, yte[va], ste[va])

    def net_fit():
        torch.manual_seed(0)
        net = make_mlp(
            Xtr.shape[1], hidden=(128, 128), lr=0.05, momentum=0.9, batch_size=128,
            epochs=cfg["scale_epochs"],
        )  # fmt: skip
        return net.fit(Xtr, y[tr])

    tm = timed(net_fit, repeats=1 if cfg["quick"] else 2)
    net = tm.result
    epoch = tm.best / cfg["scale_epochs"]
    log(f"  epoch {epoch:.2f} s ({tm.runs()})")
    rows = []
    if todo:  # warm-up: the first solve pays for lazy initialisation
        Recorder().run(
            lambda: cg_scores(net, _if(solver="cg", damping=0.1, tol=1e-2,
                                       max_iter=20, curvature="ggn"), data)
        )  # fmt: skip
    for setting, damping, tol in todo:
        rec = Recorder()
        method = _if(
            solver="cg", damping=damping, tol=tol, max_iter=200, curvature=setting
        )
        tmi = timed(
            lambda m=method, rec=rec: rec.run(lambda: cg_scores(net, m, data)),
            repeats=cfg["repeats"] - 1 or 1,
        )
        info = getattr(tmi.result, "cg_info_", None)
        conv = info is not None and bool(info.converged)
        log(f"  {setting} {damping}: {tmi.best:.2f} s, {info}, {rec.notes}")
        rows.append(
            {"run": RUN_ID, "setting": setting, "damping": damping, "tol": tol,
             "seconds": tmi.best,
             "epoch_seconds": epoch, "epochs": tmi.best / epoch,
             "converged": conv, "notes": "; ".join(rec.notes)[:400],
             "other_load": tmi.other_at_best,
             "n_iter": None if info is None else info.n_iter,
             "residual": None if info is None else info.residual,
             "stop": None if info is None else info.stop}
        )  # fmt: skip
    append_csv(p["curv"], rows, CURV_COLS)
    if trak_todo:
        k = proj_dim(cfg, "mlp", n_params(net, "mlp", Xtr.shape[1]))
        time_trak("adult-30k-mlp", net, "mlp", "utility", data, cfg, p, k)


# ------------------------------------------------------------------- report
LABELS = {"adult": "Adult", "compas": "COMPAS", "logreg": "LogReg", "mlp": "MLP"}


def _fmt(x, digits=3) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _combos(cfg):
    return [
        (d, m) for m in ("logreg", "mlp") for d in ("compas", "adult")
        if d in cfg["datasets"] and m in cfg["models"]
    ]  # fmt: skip


BASELINES = ("self_influence", "loss", "random")


def _ordered(methods) -> list[str]:
    """Method labels: skinfluence's, then the peers', then the baselines."""
    fam = dict(zip(methods.method, methods.family, strict=False))
    labels = list(dict.fromkeys(methods.method))

    def group(label):
        if label in BASELINES:
            return 2
        return 0 if fam[label] == "skinfluence" else 1

    return sorted(labels, key=lambda x: (group(x), labels.index(x)))


def noise_ceiling(retrain, dataset, model, objective) -> float:
    """About the best LDS the seed noise allows: sqrt of the reliability.

    The subsets' mean objectives vary by ``var_b`` (observed), of which
    ``var_w / R`` is seed noise (``var_w`` the variance between the ``R``
    seeds of a subset, averaged); a perfect predictor of the noise-free
    objective correlates with the observed one at about ``sqrt(1 -
    var_w / R / var_b)`` (Pearson; a guide for the Spearman LDS).
    """
    x = retrain[(retrain.dataset == dataset) & (retrain.model == model)]
    if not len(x):
        return float("nan")
    by = x.groupby("subset")[objective]
    var_w = by.var(ddof=1).mean()
    n_seeds = by.size().mean()
    var_b = by.mean().var(ddof=1)
    if not np.isfinite(var_w) or var_b <= 0:
        return float("nan")
    return float(np.sqrt(max(0.0, 1.0 - var_w / n_seeds / var_b)))


def _lds_table(methods, retrain, cfg) -> list[str]:
    cols = [(d, m, o) for d, m in _combos(cfg) for o in OBJECTIVES]
    header = ["method"] + [f"{LABELS[d]} {LABELS[m]} {o}" for d, m, o in cols]
    best = {}
    for c in cols:
        sel = methods[
            (methods.dataset == c[0])
            & (methods.model == c[1])
            & (methods.objective == c[2])
            & (methods.method != "random")
        ]
        if sel.lds.notna().any():
            best[c] = sel.lds.max()
    rows = []
    for label in _ordered(methods):
        row = [label]
        for c in cols:
            hit = _rows_of(methods, c, label)
            v = hit.lds.iloc[0] if len(hit) else None
            cell = _fmt(v) if len(hit) else ""
            if len(hit) and c in best and v == best[c]:
                cell = f"**{cell}**"
            row.append(cell)
        rows.append(row)
    rows.append(
        ["*seed-noise ceiling (approx.)*"]
        + [f"*{_fmt(noise_ceiling(retrain, *c), 2)}*" for c in cols]
    )
    return md_table(header, rows, "l" + "r" * len(cols))


def _rows_of(methods, cell, label):
    """The rows of ``methods`` for one (dataset, model, objective) cell and method."""
    return methods[
        (methods.dataset == cell[0])
        & (methods.model == cell[1])
        & (methods.objective == cell[2])
        & (methods.method == label)
    ]


def _time_table(methods, cfg) -> list[str]:
    cols = [(d, m, o) for d, m in _combos(cfg) for o in OBJECTIVES]
    header = ["method"] + [f"{LABELS[d]} {LABELS[m]} {o}" for d, m, o in cols]
    rows = []
    for label in _ordered(methods):
        row = [label]
        for c in cols:
            hit = _rows_of(methods, c, label)
            if not len(hit):
                row.append("")
            elif pd.isna(hit.seconds.iloc[0]):
                row.append("(shared)" if not hit.notes.fillna("").iloc[0] else "failed")
            else:
                row.append(f"{hit.seconds.iloc[0]:.3f}")
        rows.append(row)
    return md_table(header, rows, "l" + "r" * len(cols))


def _latest(frame):
    """The rows of the latest run in ``frame`` (a CSV with a ``run`` column)."""
    return frame[frame.run == frame.run.iloc[-1]] if len(frame) else frame


def _trak_rows(trak) -> list[list[str]]:
    if not len(trak):
        return []
    last = trak[trak.run == trak.run.iloc[-1]]
    return [
        [r.case, r.objective, str(int(r.proj_dim)), f"{r.ours_s:.3f}",
         f"{r.dattri_s:.3f}", f"{r.dattri_s / r.ours_s:.1f}x", _fmt(r.floor_s),
         _ceiling(r), r.ours_runs, r.dattri_runs, fmt_share(r.other_load),
         r.load_avg]
        for _, r in last.iterrows()
    ]  # fmt: skip


def _ceiling(r) -> str:
    """dattri's time over the projection floor: the most any dense TRAK could gain."""
    if not np.isfinite(r.floor_s) or r.floor_s <= 0:
        return "—"
    return f"{r.dattri_s / r.floor_s:.1f}x"


def _targets(methods, curv, trak, cfg) -> list[list[str]]:
    out = []
    for d, m in _combos(cfg):
        for o in OBJECTIVES:
            sel = methods[
                (methods.dataset == d) & (methods.model == m) & (methods.objective == o)
            ]
            ours = sel[(sel.family == "skinfluence") & (sel.method != "random")]
            peer = sel[sel.family == "dattri"]
            if not ours.lds.notna().any() or not peer.lds.notna().any():
                continue
            bo = ours.loc[ours.lds.idxmax()]
            bp = peer.loc[peer.lds.idxmax()]
            diff = bo.lds - bp.lds
            verdict = "PASS" if diff >= 0 else "MISS"
            if -LDS_TIE <= diff < 0:
                verdict = f"PASS (tie: {diff:+.1e})"
            out.append([
                f"LDS, {LABELS[d]} {LABELS[m]} {o}: our best >= dattri's best",
                f"{bo.lds:.4f} ({bo.method}) vs {bp.lds:.4f} ({bp.method})",
                verdict,
            ])  # fmt: skip
    out += _trak_lds_targets(methods, cfg)
    for row in _trak_rows(trak):
        ratio = float(row[5].rstrip("x"))
        out.append([
            f"TRAK speed, {row[0]} {row[1]}: dattri / ours >= 5 at proj_dim {row[2]}",
            f"{row[4]} s / {row[3]} s = {row[5]}",
            "PASS" if ratio >= 5 else "MISS",
        ])  # fmt: skip
    for _, r in _latest(curv).iterrows():
        if r.setting == "ggn" and r.damping == DEFAULT_DAMPING and r.tol == 1e-6:
            ok = bool(r.converged) and r.epochs <= 5
            out.append(
                [
                    f"influence_function ({r.setting}, cg) on the Adult MLP at damping "
                    f"{r.damping:g}: CG converges within 5 epochs",
                    f"converged: {bool(r.converged)}; {r.seconds:.2f} s = "
                    f"{r.epochs:.1f} epochs",
                    "PASS" if ok else "MISS",
                ]
            )
    return out


def _trak_lds_targets(methods, cfg) -> list[list[str]]:
    """Per cell: our best TRAK row against dattri's TRAK as published."""
    out = []
    for d, m in _combos(cfg):
        for o in OBJECTIVES:
            sel = methods[
                (methods.dataset == d) & (methods.model == m) & (methods.objective == o)
            ]
            ours = sel[sel.method.str.startswith("trak") & sel.lds.notna()]
            peer = sel[(sel.method == DATTRI_TRAK) & sel.lds.notna()]
            if not len(ours) or not len(peer):
                continue
            bo, bp = ours.loc[ours.lds.idxmax()], peer.iloc[0]
            out.append([
                f"LDS, {LABELS[d]} {LABELS[m]} {o}: our TRAK >= dattri's TRAK",
                f"{bo.lds:.4f} ({bo.method}) vs {bp.lds:.4f}",
                "PASS" if bo.lds >= bp.lds else "MISS",
            ])  # fmt: skip
    return out


def _best(methods, d, m, o, family=None):
    sel = methods[(methods.dataset == d) & (methods.model == m)
                  & (methods.objective == o) & ~methods.method.isin(BASELINES)]  # fmt: skip
    if family is not None:
        sel = sel[sel.family == family]
    sel = sel[sel.lds.notna()]
    return None if not len(sel) else sel.loc[sel.lds.idxmax()]


def _findings(methods, curv, trak, cfg) -> list[str]:
    """Bullets computed from the tables: the best predictors, the misses' causes."""
    out = []
    for d, m in _combos(cfg):
        parts = []
        for o in OBJECTIVES:
            b = _best(methods, d, m, o)
            if b is not None:
                parts.append(f"{o}: {b.method} ({b.lds:.3f})")
        if parts:
            out.append(
                f"- Best LDS, {LABELS[d]} {LABELS[m]}: " + "; ".join(parts) + "."
            )
    c = _latest(curv)
    d0 = DEFAULT_DAMPING
    ggn = c[(c.setting == "ggn") & (c.damping == d0) & (c.tol == 1e-6)]
    if len(ggn) and ggn.n_iter.notna().all():
        r = ggn.iloc[0]
        per_it = r.seconds / r.n_iter / r.epoch_seconds
        line = (
            f"- GGN CG at damping {d0:g} x trace/P on the 30,000-row Adult MLP: {int(r.n_iter)} "
            f"iterations to tol 1e-6, {r.seconds:.1f} s = {r.epochs:.1f} epochs, "
            f"i.e. {per_it:.2f} epoch per iteration (a GGN product plus CG's "
            "vector work over all rows). Within 5 epochs CG would need <= "
            f"{int(5 / per_it)} iterations at that cost; the iteration count is set "
            "by the conditioning of GGN + lambda I."
        )
        loose = c[(c.setting == "ggn") & (c.damping == d0) & (c.tol == 1e-3)]
        if len(loose):
            q = loose.iloc[0]
            line += (
                f" At tol 1e-3 it takes {int(q.n_iter)} iterations = "
                f"{q.epochs:.1f} epochs"
            )
            big = c[(c.setting == "ggn") & (c.damping == 0.3) & (c.tol == 1e-6)]
            if len(big):
                line += (
                    f"; at damping 0.3, {int(big.iloc[0].n_iter)} iterations = "
                    f"{big.iloc[0].epochs:.1f} epochs"
                )
            line += "."
        out.append(line)
    for row in _trak_rows(trak):
        if float(row[5].rstrip("x")) < 5:
            line = (
                f"- TRAK {row[0]} {row[1]}: ours {row[3]} s against dattri's "
                f"{row[4]} s ({row[5]})"
            )
            if row[6] != "—":
                line += (
                    f"; the dense n x P by P x proj_dim projection alone takes "
                    f"{row[6]} s here, so a TRAK with a dense projection can be at "
                    f"most {row[7]} faster than dattri's"
                )
            out.append(line + ".")
    return out


def _loo_tables(loo, methods, cfg) -> list[str]:
    lines = []
    if not len(loo):
        return lines
    agg = (
        loo.assign(delta=loo.j_removed - loo.j_full)
        .groupby(["dataset", "model", "objective", "method", "direction"], sort=False)
        .agg(
            delta=("delta", "mean"), predicted=("predicted", "first"), k=("k", "first")
        )
        .reset_index()
    )
    calibrated = ("influence_function", "dattri CG")
    for d, m in _combos(cfg):
        sel = agg[(agg.dataset == d) & (agg.model == m)]
        if not len(sel):
            continue
        k = int(sel.k.iloc[0])
        lines += ["", f"### {LABELS[d]}, {LABELS[m]} (k = {k})", ""]
        header = ["method"] + [
            f"{o}: remove {dr}" for o in OBJECTIVES for dr in ("harmful", "helpful")
        ]
        rows = []
        for label in [x for x in _ordered(methods) if x in set(sel.method)]:
            row = [label]
            for o in OBJECTIVES:
                for dr in ("harmful", "helpful"):
                    h = sel[
                        (sel.objective == o)
                        & (sel.method == label)
                        & (sel.direction == dr)
                    ]
                    if not len(h):
                        row.append("")
                        continue
                    cell = f"{h.delta.iloc[0]:+.4f}"
                    if label.startswith(calibrated):
                        cell += f" (pred. {h.predicted.iloc[0]:+.4f})"
                    row.append(cell)
            rows.append(row)
        lines += md_table(header, rows, "lrrrr")
    return lines


def _notes(methods) -> list[str]:
    out = []
    for _, r in methods.iterrows():
        if isinstance(r.notes, str) and r.notes:
            kept = [n for n in r.notes.split("; ") if "DeprecationWarning" not in n]
            if not kept:
                continue
            out.append(
                f"- {LABELS[r.dataset]} {LABELS[r.model]} {r.objective}, "
                f"{r.method}: {'; '.join(kept)}"
            )
    return out


def render(cfg, p) -> None:
    meta = json.loads(p["json"].read_text()) if p["json"].exists() else {}
    methods = read_csv(p["methods"], METHOD_COLS)
    loo = read_csv(p["loo"], LOO_COLS)
    curv = read_csv(p["curv"], CURV_COLS)
    retrain = read_csv(p["retrain"], RETRAIN_COLS)
    trak = read_csv(p["trak"], TRAK_COLS)
    L = ["# Counterfactual benchmark: influence against retraining", ""]
    for i, run in enumerate(meta.get("runs", [])):
        wall = run.get("wall_seconds")
        took = "unfinished" if wall is None else f"wall time {wall / 60:.1f} min"
        L += [f"Run {i + 1} ({run['run']}, {took}; TRAK in the library: "
              f"{run['trak_available']}, `curvature=` parameter: "
              f"{run['curvature_parameter']}):", ""]  # fmt: skip
        L += run["header"] + [""]
    L += ["## Setup", ""] + _setup_lines(cfg, retrain)
    L += ["", "## Targets", "", TARGET_TEXT, ""]
    L += md_table(["target", "measured", "verdict"], _targets(methods, curv, trak, cfg))
    L += ["", "### Why, and which method predicts retraining best", ""]
    L += _findings(methods, curv, trak, cfg)
    L += ["", "## Linear datamodeling score", "", LDS_TEXT, ""]
    L += _lds_table(methods, retrain, cfg)
    L += ["", "## Seconds to score", "", TIME_TEXT, ""]
    L += _time_table(methods, cfg)
    if len(trak):
        L += ["", "### TRAK: ours against dattri's", "", TRAK_TEXT, ""]
        L += md_table(
            ["case", "objective", "proj_dim", "ours (s)", "dattri (s)",
             "dattri / ours", "projection floor (s)", "dattri / floor",
             "ours, all runs", "dattri, all runs", "other load", "load average"],
            _trak_rows(trak), "lllrrrrr",
        )  # fmt: skip
    L += ["", "## Leave-k-out", "", LOO_TEXT]
    L += _loo_tables(loo, methods, cfg)
    if len(curv):
        L += ["", "## Influence function curvature on the Adult MLP", "", CURV_TEXT, ""]
        number = {r["run"]: str(i + 1) for i, r in enumerate(meta.get("runs", []))}
        L += md_table(
            ["run", "curvature", "damping", "tol", "seconds", "epoch (s)", "epochs",
             "CG iterations", "rel. residual", "stopped by", "converged"],
            [[number.get(r.run, "?"), r.setting, f"{r.damping:g}", f"{r.tol:g}",
              f"{r.seconds:.2f}", f"{r.epoch_seconds:.2f}", f"{r.epochs:.1f}",
              _fmt(r.n_iter, 0), _fmt(r.residual, 6), str(r.stop),
              str(bool(r.converged))]
             for _, r in curv.iterrows()],
            "lllrrrrrrll",
        )  # fmt: skip
    notes = _notes(methods)
    if notes:
        L += ["", "## Warnings and errors recorded while scoring", ""] + notes
    write_result(p["md"], "\n".join(L) + "\n")


def _setup_lines(cfg, retrain) -> list[str]:
    seeds = cfg["retrain_seeds"]
    n_fits = len(retrain)
    return [
        f"- Data: {', '.join(LABELS[d] for d in cfg['datasets'])}; "
        f"{cfg['n_train']} training and {cfg['n_val']} validation rows per data set "
        f"(stratified by label x group, seed {cfg['data_seed']}; Adult: its train "
        "subset, sensitive feature sex; COMPAS: African-American and Caucasian "
        "rows, sensitive feature race); one-hot + standardised, float32.",
        f"- Models: LogisticRegression (newton-cholesky, C={cfg['logreg_C']}); skorch "
        f"MLP hidden {cfg['mlp_hidden']}, SGD lr {cfg['mlp_lr']} momentum "
        f"{cfg['mlp_momentum']}, batch {cfg['mlp_batch']}, {cfg['mlp_epochs']} epochs "
        "(TracIn checkpoints each epoch on the full-data fit).",
        "- Objectives measured on the validation rows: utility = mean "
        "cross-entropy; fairness = soft demographic-parity gap |mean p(group a) - "
        "mean p(group b)| (`skinfluence.objectives.Fairness()`).",
        f"- LDS: {cfg['n_subsets']} random halves of the training rows, each "
        f"retrained with seeds {seeds} (averaged; {n_fits} fits in all; "
        "LogisticRegression's fit is deterministic, so its seeds agree).",
        f"- Leave-k-out: k = {cfg['loo_fraction']:.0%} of the training rows, "
        f"retrained with seeds {seeds}; change = mean over seeds of J(without the "
        "k rows) - J(all rows), same seed.",
        "- Scores from the model fitted on all training rows (seed "
        f"{cfg['full_seed']}); ip_ensemble = IPEnsemble{tuple(cfg['ensemble'].values())} "
        "(n_members, max_dropout); CG max_iter "
        f"{cfg['if_cg_max_iter']} (ours), {cfg['dattri_cg_max_iter']} (dattri).",
    ]


LDS_TIE = 1e-3
TARGET_TEXT = (
    'From the issue. "Our best" is the best skinfluence method of the column '
    "with random excluded; dattri's best is the better of its TRAK and CG rows. "
    "A shortfall below 0.001 counts as a tie (PASS, marked): on "
    "LogisticRegression our exact influence function and dattri's CG compute "
    "the same quantity, and such a difference is one swap of two nearly equal "
    "predictions among the subsets (float32 against float64)."
)
TRAK_TEXT = (
    "Scoring time with one model (one ensemble member, one checkpoint) at "
    "equal proj_dim, both in this process, runs interleaved (ours, dattri, "
    'ours, ...), the fastest of each reported; "other load": share of all CPUs '
    "used by other processes during the runs (/proc/stat). Only the latest "
    "run's timings are shown: a ratio is never taken across runs. \"Projection "
    'floor": the time of the dense product of n x P random gradients by a P x '
    "proj_dim Gaussian matrix (chunks of 2,048 rows, same process, same "
    "repeats), which both implementations must do; dattri / floor is the "
    "largest speed-up any TRAK with a dense Gaussian projection could reach. "
    "TRAK rows: ours is `TRAK(proj_dim, n_members)` at its default damping "
    "(0.05 x the kernel's mean eigenvalue); the members are dropout copies "
    "for LogisticRegression and the last recorded epochs for the MLP. "
    "dattri's TRAK is configured as dattri documents it: the rows' margin "
    "log(p / (1 - p)) as its output function, no regularization, its own "
    "projection (seed 0); its scores are negated into our sign. The row "
    '"dattri TRAK, loss gradients" is the configuration of runs 1-3 (the '
    "rows' loss gradients, which folds Q in twice), kept for comparison."
)
LDS_TEXT = (
    "Spearman correlation, over the subsets, between the predicted change of "
    "the objective (minus the sum of the kept rows' scores; "
    "`skinfluence.metrics.linear_datamodeling_score`) and the objective measured "
    "after retraining. 1 is a perfect ranking of the subsets, 0 none. Bold: the "
    "best method of the column (random excluded). self_influence, loss and "
    "random do not depend on the objective; they are baselines. The last row "
    "is about the best LDS that the retraining noise allows (a perfect "
    "predictor of the seed-averaged objective; `noise_ceiling` in the script): "
    "LogisticRegression's fits are deterministic, the MLP's vary with the seed."
)
TIME_TEXT = (
    "Wall seconds of one scoring call on the fitted model (the fastest of "
    "`repeats` calls), 1 torch thread, on a machine shared with other "
    'benchmarks; "(shared)": an objective-free method computed once.'
)
LOO_TEXT = (
    "Mean change of the objective (lower is better for both) when the k "
    "rows a method ranks most harmful (lowest scores) or most helpful "
    "(highest) are removed and the model retrained. A useful ranking gives a "
    'negative change for "harmful" and a positive one for "helpful". '
    "In parentheses, for the methods whose scores estimate the effect of "
    "removal (influence functions), the predicted change sum(scores of "
    "the removed rows) / n."
)
CURV_TEXT = (
    "The speed benchmark's model (Adult, 30,000 training rows of the train "
    "subset, 6,000 validation rows of the test subset, MLP 104-128-128-2, SGD "
    "lr 0.05 momentum 0.9, batch 128, 5 epochs; epoch = fastest of 2 fits / 5). "
    '`InfluenceFunction(solver="cg", max_iter=200, tol=tol, '
    'on_unconverged="warn")` on the utility objective, scored through '
    "`Method.score` so that the fitted `cg_info_` (iterations, final relative "
    "residual, why CG stopped) can be read; seconds include the objective's "
    "gradient and the scoring pass, as in `compute_influence` (the faster of "
    "2 runs, after a warm-up solve). Since InfluenceFunction's damping became "
    "relative (lambda = damping x trace / P, default 3), the damping column is "
    "that relative damping; earlier runs' rows (damping 1e-4 to 0.1) were "
    "absolute. The target is judged on the latest run's GGN row at the default "
    "damping 3 and tol 1e-6; the other rows show what damping and tol cost."
)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test (< 2 min)")
    ap.add_argument("--render", action="store_true", help="only rebuild the tables")
    ap.add_argument("--fresh", action="store_true", help="discard the CSVs first")
    ap.add_argument("--datasets", nargs="+", choices=["adult", "compas"])
    ap.add_argument("--models", nargs="+", choices=["logreg", "mlp"])
    ap.add_argument(
        "--no-scale", action="store_true",
        help="skip the 30,000-row Adult MLP (CG convergence, TRAK timing)",
    )  # fmt: skip
    ap.add_argument("--out", default=None, help="file stem under results/")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    cfg = config(args)
    out = args.out or ("counterfactual_quick" if args.quick else "counterfactual")
    p = paths(out)
    if args.render:
        render(json.loads(p["json"].read_text())["config"], p)
        return
    if args.fresh:
        for key in ("retrain", "methods", "loo", "curv", "trak", "json"):
            p[key].unlink(missing_ok=True)
        for f in p["cache"].glob("*.npz") if p["cache"].exists() else []:
            f.unlink()
    runs = []
    if p["json"].exists():
        old = json.loads(p["json"].read_text())
        free = ("datasets", "models", "scale")
        if {k: v for k, v in old["config"].items() if k not in free} != {
            k: v for k, v in cfg.items() if k not in free
        }:
            sys.exit(f"{p['json']} holds another configuration: use --fresh or --out.")
        runs = old.get("runs", [])
        for key in free:  # the union of what the runs covered
            if key != "scale":
                cfg[key] = sorted(set(cfg[key]) | set(old["config"][key]))
    run = {
        "run": RUN_ID,
        "header": run_header("bench_counterfactual.py", argv),
        "trak_available": TRAK is not None,
        "curvature_parameter": HAS_CURVATURE,
        "wall_seconds": None,
    }
    meta = {"config": cfg, "runs": [*runs, run]}
    p["json"].write_text(json.dumps(meta, indent=1))
    t0 = time.perf_counter()
    order = [(d, m) for m in ("logreg", "mlp") for d in ("compas", "adult")]
    wanted = (args.datasets or cfg["datasets"], args.models or cfg["models"])
    for dataset, model in order:
        if dataset in wanted[0] and model in wanted[1]:
            try:
                run_combo(dataset, model, cfg, p)
            except Exception:  # noqa: BLE001 - one combination must not stop the rest
                traceback.print_exc()
            render(cfg, p)
    if cfg["scale"]:
        try:
            run_scale(cfg, p)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
    run["wall_seconds"] = time.perf_counter() - t0
    p["json"].write_text(json.dumps(meta, indent=1))
    render(cfg, p)
    log(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
