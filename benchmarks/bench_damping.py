"""Which relative damping predicts retraining best? (``InfluenceFunction``'s default)

``InfluenceFunction`` damps its curvature with ``lambda = damping x
trace(G) / P`` (``G`` the Gauss-Newton matrix, ``P`` the parameters). This
script scores the counterfactual benchmark's models with a grid of relative
dampings and reports each one's linear datamodeling score (LDS,
``skinfluence.metrics.linear_datamodeling_score``) against the retraining
already measured by ``bench_counterfactual.py`` (its ``counterfactual_retrain
.csv``: 100 random halves of the training rows, 3 seeds each). Development
data only: Adult's ``train`` subset and COMPAS, the same 3,000 training and
1,000 validation rows as that benchmark (data seed 0; the validation rows are
drawn from the same subset, never from Adult's test subset); models
LogisticRegression (C=1) and the skorch MLP (1 x 32 ReLU, 20 epochs, seed 0);
objectives utility and fairness (soft demographic parity).

For each cell it records the LDS, the CG iterations at ``max_iter=1000`` and
whether the default ``max_iter=200`` would have reached ``tol=1e-6``, and the
curvature's scale; on each MLP also the seeded Hutchinson estimate of the
trace against the exact one (per-row Jacobians, ``J^T H_out J``). Writes
``benchmarks/results/damping.csv`` and prints a table.

Usage: ``python benchmarks/bench_damping.py`` (about 5 minutes, one thread).
"""

from __future__ import annotations

import time
import warnings

import pandas as pd
import torch
from bench_counterfactual import (
    OBJECTIVES,
    fit,
    lds_rows,
    load_split,
    paths,
)
from bench_counterfactual import config as cf_config
from harness import RESULTS_DIR, log, read_csv, set_threads

from skinfluence import as_torch_model
from skinfluence.kernels import GGN, curvature_scale
from skinfluence.methods import InfluenceFunction
from skinfluence.objectives import Fairness, Utility

GRID = (1e-4, 1e-3, 1e-2, 1e-1, 0.3, 1.0, 3.0, 10.0, 30.0)
MAX_ITER = 1000  # enough to converge at every damping of the grid: the LDS of a solve
DEFAULT_MAX_ITER = 200
OUT = RESULTS_DIR / "damping.csv"


class _Args:
    quick = False
    datasets = None
    models = None
    no_scale = True


def exact_ggn_trace(est, Xtr) -> float:
    """``trace(J^T H_out J) / n + sum l2 * numel``, from per-row Jacobians."""
    from torch.func import functional_call, jacrev, vmap

    model = as_torch_model(est)
    X = model.prepare_X(Xtr)
    params = {k: v.detach() for k, v in model.params.items()}
    module = est.module_

    def logits(p, x):
        return functional_call(module, p, (x[None],))[0]

    total = 0.0
    for i in range(0, len(X), 250):
        xb = X[i : i + 250]
        J = vmap(jacrev(logits), in_dims=(None, 0))(params, xb)  # (b, C, *shape)
        Jf = torch.cat([J[k].reshape(len(xb), J[k].shape[1], -1) for k in J], -1)
        p = torch.softmax(vmap(logits, in_dims=(None, 0))(params, xb), -1)
        H = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        total += float(torch.einsum("iab,iap,ibp->", H, Jf, Jf))
    l2 = model.l2(len(X))
    return total / len(X) + sum(l2.get(k, 0.0) * v.numel() for k, v in params.items())


def run() -> pd.DataFrame:
    set_threads(1)
    cfg = cf_config(_Args())
    retrain_all = read_csv(paths("counterfactual")["retrain"], None)
    rows = []
    for dataset in ("compas", "adult"):
        data = load_split(dataset, cfg)
        Xtr, ytr = data[0], data[1]
        for model in ("logreg", "mlp"):
            retrain = retrain_all[
                (retrain_all.dataset == dataset) & (retrain_all.model == model)
            ]
            est = fit(model, Xtr, ytr, cfg["full_seed"], cfg)
            tm = as_torch_model(est)
            X, y = tm.prepare_X(Xtr), tm.prepare_y(ytr)
            G = GGN(tm, tm.params, X, y, 4096)
            P = sum(v.numel() for v in tm.params.values())
            t0 = time.perf_counter()
            scale = curvature_scale(G)
            t_scale = time.perf_counter() - t0
            exact = exact_ggn_trace(est, Xtr) / P if model == "mlp" else scale
            log(
                f"{dataset} {model}: P={P}, trace/P={scale:.4g} "
                f"(exact {exact:.4g}, {t_scale:.2f} s)"
            )
            scores, meta = {}, {}
            labels = [("undamped, exact", None)] if model == "logreg" else []
            labels += [(f"{d:g}", d) for d in GRID]
            for objective in OBJECTIVES:
                for label, d in labels:
                    if d is None:
                        method = InfluenceFunction(solver="exact", damping=0.0)
                    else:
                        method = InfluenceFunction(
                            damping=d, max_iter=MAX_ITER, on_unconverged="warn"
                        )
                    # Method.score (public) on the bound objective, as
                    # compute_influence does, so that cg_info_ can be read
                    J = (Utility() if objective == "utility" else Fairness()).bind(
                        tm, data[2], data[3], sensitive_features=data[4]
                    )
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        s = method.score(tm, J, X, y, batch_size=4096)
                    scores[f"{objective}|{label}"] = s.detach().double().numpy()
                    info = getattr(method, "cg_info_", None)
                    meta[(objective, label)] = (d, info)
            lds = lds_rows(dataset, model, scores, retrain, cfg)
            for (objective, label), (d, info) in meta.items():
                rows.append({
                    "dataset": dataset, "model": model, "objective": objective,
                    "damping": label, "P": P, "trace_per_param": scale,
                    "exact_trace_per_param": exact,
                    "lambda": None if d is None else d * scale,
                    "lds": lds[(objective, label)],
                    "cg_iter": None if info is None else info.n_iter,
                    "converged": None if info is None else info.converged,
                    "within_200": None if info is None else (
                        info.converged and info.n_iter <= DEFAULT_MAX_ITER),
                    "stop": None if info is None else info.stop,
                })  # fmt: skip
                log(f"  {objective:9s} damping {label:16s} LDS {lds[(objective, label)]:.3f}"
                    + ("" if info is None else f"  CG {info.n_iter} it, {info.stop}"))  # fmt: skip
    out = pd.DataFrame(rows)
    out.to_csv(OUT, index=False)
    return out


def summary(df: pd.DataFrame) -> None:
    damped = df[df.damping != "undamped, exact"]
    table = damped.pivot_table(
        index="damping", columns=["dataset", "model", "objective"], values="lds",
        sort=False,
    )  # fmt: skip
    table[("mean", "", "")] = table.mean(axis=1)
    table[("min", "", "")] = table.iloc[:, :-1].min(axis=1)
    print(table.round(3).to_string())
    print(
        "all within 200 iterations:",
        damped.groupby("damping", sort=False).within_200.all().to_dict(),
    )


if __name__ == "__main__":
    summary(run())
