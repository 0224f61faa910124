"""Which relative damping predicts retraining best? (``InfluenceFunction``'s default)

Run from the repository root (what it measures: ``benchmarks/README.md``)::

    python benchmarks/bench_damping.py           # ~5 min -> results/damping.csv
    python benchmarks/bench_damping.py --quick   # COMPAS logreg, 2 dampings (~10 s)
    python benchmarks/report.py damping          # the table: results/damping.md

The counterfactual benchmark's models and data, scored with
``InfluenceFunction(damping=d)`` over a grid of relative dampings
(``lambda = d x trace(G) / P``); the linear datamodeling score of each
against the retraining ``bench_counterfactual.py`` measured
(``results/counterfactual_retrain.csv``); CG's iterations at
``max_iter=1000``; on each MLP the seeded trace estimate against the exact
trace of ``J^T H_out J``.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
import torch
from bench_counterfactual import OBJECTIVES, bind, config, fit, load_split, subsets_of
from harness import RESULTS_DIR, log, set_threads, stopwatch, write_csv

from skinfluence import as_torch_model
from skinfluence.kernels import GGN, curvature_scale
from skinfluence.methods import InfluenceFunction
from skinfluence.metrics import linear_datamodeling_score

GRID = (1e-4, 1e-3, 1e-2, 1e-1, 0.3, 1.0, 3.0, 10.0, 30.0)
MAX_ITER = 1000  # enough to converge at every damping of the grid: the LDS of a solve
DEFAULT_MAX_ITER = 200


def exact_ggn_trace(est, Xtr) -> float:
    """``trace(J^T H_out J) / n + sum l2 * numel``, from per-row Jacobians."""
    from torch.func import functional_call, jacrev, vmap

    model = as_torch_model(est)
    X = model.prepare_X(Xtr)
    params = {k: v.detach() for k, v in model.params.items()}

    def logits(p, x):
        return functional_call(est.module_, p, (x[None],))[0]

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


def score_cell(tm, data, X, y, objective: str, d):
    """Scores of one damping (``None``: exact, undamped) and CG's report."""
    if d is None:
        method = InfluenceFunction(solver="exact", damping=0.0)
    else:
        method = InfluenceFunction(damping=d, max_iter=MAX_ITER, on_unconverged="warn")
    # Method.score (public) on the bound objective, as compute_influence does,
    # so that cg_info_ can be read
    J = bind(objective, tm, *data[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = method.score(tm, J, X, y, batch_size=4096)
    return s.detach().double().numpy(), getattr(method, "cg_info_", None)


def run_model(dataset, model, data, retrain, cfg, grid) -> list[dict]:
    """The rows of one (data set, model): every objective and damping."""
    est = fit(model, data[0], data[1], 0, cfg)
    tm = as_torch_model(est)
    X, y = tm.prepare_X(data[0]), tm.prepare_y(data[1])
    P = sum(v.numel() for v in tm.params.values())
    with stopwatch() as sw:
        scale = curvature_scale(GGN(tm, tm.params, X, y, 4096))
    exact = exact_ggn_trace(est, data[0]) / P if model == "mlp" else scale
    log(f"{dataset} {model}: P={P}, trace/P={scale:.4g} (exact {exact:.4g}, "
        f"{sw['seconds']:.2f} s)")  # fmt: skip
    labels = [("undamped, exact", None)] if model == "logreg" else []
    labels += [(f"{d:g}", d) for d in grid]
    subsets = subsets_of(len(data[1]), cfg, dataset)
    mean = retrain.groupby("subset")[list(OBJECTIVES)].mean().sort_index()
    rows = []
    for objective, (label, d) in ((o, c) for o in OBJECTIVES for c in labels):
        s, cg = score_cell(tm, data, X, y, objective, d)
        lds = np.nan if not np.all(np.isfinite(s)) else linear_datamodeling_score(
            s, subsets[mean.index.to_numpy()], mean[objective].to_numpy())  # fmt: skip
        rows.append({
            "dataset": dataset, "model": model, "objective": objective,
            "damping": label, "P": P, "trace_per_param": scale,
            "exact_trace_per_param": exact, "lambda": None if d is None else d * scale,
            "lds": lds,
            "cg_iter": None if cg is None else cg.n_iter,
            "converged": None if cg is None else cg.converged,
            "within_200": None if cg is None else (
                cg.converged and cg.n_iter <= DEFAULT_MAX_ITER),
            "stop": None if cg is None else cg.stop,
        })  # fmt: skip
        log(f"  {objective:9s} damping {label:16s} LDS {rows[-1]['lds']:.3f}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="COMPAS logreg, 2 dampings")
    args = parser.parse_args(argv)
    set_threads(1)
    cfg = config(quick=False)  # the full counterfactual run's data and models
    retrain = pd.read_csv(RESULTS_DIR / "counterfactual_retrain.csv")
    grid = (1e-2, 3.0) if args.quick else GRID
    rows = []
    for dataset in ("compas",) if args.quick else ("compas", "adult"):
        data = load_split(dataset, cfg)
        for model in ("logreg",) if args.quick else ("logreg", "mlp"):
            cell = retrain[(retrain.dataset == dataset) & (retrain.model == model)]
            rows += run_model(dataset, model, data, cell, cfg, grid)
    name = "damping_quick" if args.quick else "damping"
    write_csv(name, pd.DataFrame(rows), argv=argv)


if __name__ == "__main__":
    main()
