"""Counterfactual benchmark, cost: TRAK against dattri's, and CG's convergence.

* **TRAK timing.** Our ``TRAK(proj_dim, 1)`` through ``compute_influence``
  and dattri's ``TRAKAttributor`` (one checkpoint) at the same projection
  dimension, on the models of ``bench_counterfactual.py`` and on the speed
  benchmark's 30,000-row Adult MLP; runs interleaved in this process, with
  the time of the dense projection both must do (the "floor").
* **Curvature.** ``InfluenceFunction(solver="cg")`` on that MLP with the
  Gauss-Newton and the Hessian at several dampings and tolerances, scored
  through ``Method.score`` to read ``cg_info_``; seconds and epochs.

Writes ``results/<out>_{trak_timing,curvature}.csv``; ``benchmarks/report.py
counterfactual`` renders them, ``benchmarks/README.md`` reads them. Public
API only.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from bench_counterfactual import (
    OBJECTIVES,
    Recorder,
    cg_if,
    cli,
    combos,
    config,
    fit,
    fitted,
    load_split,
    score_ours,
    trak_dim,
)
from bench_counterfactual_peers import dattri_tasks, dattri_trak
from harness import (
    encode,
    load_avg,
    load_dataset,
    log,
    make_mlp,
    set_threads,
    timed,
    write_csv,
)

from skinfluence import TRAK, as_torch_model

RUN_ID = time.strftime("%Y%m%d-%H%M%S")  # a timing ratio is taken within one run
DEFAULT_DAMPING = 3.0  # InfluenceFunction's damping="auto" on networks
CURVATURE = [  # (curvature, relative damping, tol)
    ("ggn", DEFAULT_DAMPING, 1e-6),
    ("ggn", 0.3, 1e-6),
    ("ggn", DEFAULT_DAMPING, 1e-3),
    ("hessian", DEFAULT_DAMPING, 1e-6),
]


def projection_floor(n: int, P: int, k: int, chunk: int = 2048) -> None:
    """The dense projection both TRAKs do: ``n x P`` gradients times ``P x k``.

    Random rows in chunks of ``chunk`` against one Gaussian ``P x k`` matrix
    (float32, the drawing excluded): a lower bound for any TRAK with a dense
    projection at this ``proj_dim``.
    """
    R = torch.randn(P, k)
    G = torch.randn(min(chunk, n), P)
    for done in range(0, n, chunk):
        G[: min(chunk, n - done)] @ R


def time_trak(case, est, model, objective, data, cfg) -> dict | None:
    """Our TRAK and dattri's at equal proj_dim on one model, interleaved runs."""
    k = trak_dim(est, cfg["proj_dim"][model], data)
    tasks = dattri_tasks(est, model, objective, data, cfg["logreg_C"])
    P = sum(p.numel() for p in as_torch_model(est).params.values())
    rec, ours, theirs, floor = Recorder(), [], [], []
    for _ in range(cfg["repeats"]):
        ours.append(
            timed(lambda: rec.run(lambda: score_ours(est, TRAK(k, 1), objective, data)))
        )
        theirs.append(timed(lambda: rec.run(lambda: dattri_trak(tasks, k))))
        floor.append(timed(lambda: projection_floor(len(data[1]), P, k)).best)
    if any(t.result is None for t in ours + theirs):
        log(f"  TRAK timing failed: {rec.notes}")
        return None
    sec_o = [t.seconds[0] for t in ours]
    sec_d = [t.seconds[0] for t in theirs]
    loads = [t.other[0] for t in ours + theirs if t.other[0] is not None]
    log(
        f"  TRAK {case} {objective}: ours {min(sec_o):.3f} s, dattri {min(sec_d):.3f} s"
    )
    return {
        "run": RUN_ID, "case": case, "objective": objective, "proj_dim": k,
        "ours_s": min(sec_o), "dattri_s": min(sec_d),
        "ours_runs": " ".join(f"{x:.3f}" for x in sec_o),
        "dattri_runs": " ".join(f"{x:.3f}" for x in sec_d),
        "other_load": float(np.mean(loads)) if loads else None,
        "load_avg": load_avg(), "floor_s": min(floor),
    }  # fmt: skip


def scale_model(cfg):
    """The speed benchmark's Adult MLP (104-128-128-2), its data and epoch seconds."""
    n = cfg["scale_rows"]
    log(f"== scale: Adult MLP 104-128-128-2, {n} rows, {cfg['scale_epochs']} epochs")
    X, y, _ = load_dataset("adult", subset="train")
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
    log(f"  epoch {tm.best / cfg['scale_epochs']:.2f} s ({tm.runs()})")
    return tm.result, data, tm.best / cfg["scale_epochs"]


def curvature_rows(net, data, epoch: float, cfg) -> list[dict]:
    """CG's iterations, residual and cost per (curvature, damping, tol)."""
    warm_up = cg_if(damping=0.1, tol=1e-2, max_iter=20, curvature="ggn")
    Recorder().run(lambda: fitted(net, warm_up, "utility", data))  # lazy initialisation
    rows = []
    for curvature, damping, tol in CURVATURE:
        rec = Recorder()
        method = cg_if(damping=damping, tol=tol, max_iter=200, curvature=curvature)
        tm = timed(
            lambda m=method, rec=rec: rec.run(lambda: fitted(net, m, "utility", data)),
            repeats=cfg["repeats"] - 1 or 1,
        )
        info = getattr(tm.result, "cg_info_", None)
        log(f"  {curvature} {damping}: {tm.best:.2f} s, {info}, {rec.notes}")
        rows.append(
            {"run": RUN_ID, "setting": curvature, "damping": damping, "tol": tol,
             "seconds": tm.best, "epoch_seconds": epoch, "epochs": tm.best / epoch,
             "converged": info is not None and bool(info.converged),
             "notes": "; ".join(rec.notes)[:400], "other_load": tm.other_at_best,
             "n_iter": None if info is None else info.n_iter,
             "residual": None if info is None else info.residual,
             "stop": None if info is None else info.stop}
        )  # fmt: skip
    return rows


def main(argv=None) -> None:
    ap = cli(__doc__.splitlines()[0])
    ap.add_argument(
        "--no-scale", action="store_true", help="skip the 30,000-row Adult MLP"
    )
    args = ap.parse_args(argv)
    set_threads(args.threads)
    cfg = config(args.quick)
    cfg.update(
        quick=args.quick,
        scale_rows=2000 if args.quick else 30000,
        scale_val=500 if args.quick else 6000,
        scale_epochs=1 if args.quick else 5,
    )
    out = args.out or ("counterfactual_quick" if args.quick else "counterfactual")
    timing = []
    for dataset, model in combos(args):
        log(f"== {dataset} / {model}")
        data = load_split(dataset, cfg)
        est = fit(model, data[0], data[1], 0, cfg, checkpoints=(model == "mlp"))
        for objective in OBJECTIVES:
            timing.append(
                time_trak(f"{dataset}-{model}", est, model, objective, data, cfg)
            )
        write_csv(
            f"{out}_trak_timing", pd.DataFrame([r for r in timing if r]), argv=argv
        )
    if not args.no_scale:
        net, data, epoch = scale_model(cfg)
        write_csv(
            f"{out}_curvature",
            pd.DataFrame(curvature_rows(net, data, epoch, cfg)),
            argv=argv,
        )
        timing.append(time_trak("adult-30k-mlp", net, "mlp", "utility", data, cfg))
        write_csv(
            f"{out}_trak_timing", pd.DataFrame([r for r in timing if r]), argv=argv
        )


if __name__ == "__main__":
    main()
