"""The fairness reports: tables from the CSVs of bench_fairness.py, bench_trees.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
from harness import RESULTS_DIR

from . import frame_table, report, run_facts

FAIR_COLS = ["test_gap", "test_accuracy", "validation_hard_gap", "validation_accuracy",
             "rows_touched", "fits", "seconds"]


def fairness_runs() -> pd.DataFrame:
    """Every ``results/fairness_<data>_<model>.csv``, one frame."""
    return pd.concat([pd.read_csv(p) for p in protocol_csvs()], ignore_index=True)


def protocol_csvs() -> list:
    """The protocol's CSVs: ``fairness_<data>_<model>.csv``."""
    return sorted(p for data in ("adult", "compas")
                  for p in RESULTS_DIR.glob(f"fairness_{data}_*.csv"))


def accuracy_at(ours: pd.DataFrame, gap: float) -> float:
    """Our held-out accuracy at ``gap``, interpolated between our points that no
    other of ours beats (lower gap and higher accuracy); NaN when the front does
    not reach a gap that small."""
    pts = ours.sort_values(["test_gap", "test_accuracy"], ascending=[True, False])
    pts = pts[["test_gap", "test_accuracy"]].to_numpy()
    pts = pts[pts[:, 1] >= np.maximum.accumulate(pts[:, 1])]  # the points no other beats
    if len(pts) == 0 or gap < pts[0, 0]:
        return float("nan")
    return float(np.interp(gap, pts[:, 0], pts[:, 1]))


def against_peers(runs: pd.DataFrame) -> pd.DataFrame:
    """Per peer point: our accuracy at its held-out gap minus its accuracy."""
    out = []
    for (data, model, seed), g in runs.groupby(["data", "model", "seed"]):
        ours = g[g.method.isin(["influence", "none"])]
        for _, r in g[~g.method.isin(["influence", "none"])].iterrows():
            mine = accuracy_at(ours, r.test_gap)
            out.append({"data": data, "model": model, "role": r.role, "seed": seed,
                        "peer": r.method, "bound": r.bound, "peer_gap": r.test_gap,
                        "peer_accuracy": r.test_accuracy, "ours_accuracy": mine,
                        "difference_points": 100 * (mine - r.test_accuracy)})
    return pd.DataFrame(out)


@report("fairness")
def fairness_report() -> list[str]:
    runs = fairness_runs()
    keys = ["data", "model", "role", "method", "bound"]
    mean = runs.groupby(keys, dropna=False)[FAIR_COLS].mean().reset_index()
    seeds = runs.groupby(["data", "model"])["seed"].nunique()
    lines = ["# Fairness cleanup under the protocol (bench_fairness.py)", ""]
    for path in protocol_csvs():
        lines += [f"- `{path.name}`:"] + ["  " + x for x in run_facts(path.stem)]
    fmt = {"test_gap": ".4f", "test_accuracy": ".4f", "validation_hard_gap": ".4f",
           "validation_accuracy": ".4f", "rows_touched": ".0f", "fits": ".1f", "seconds": ".1f"}
    for (data, model), g in mean.groupby(["data", "model"]):
        lines += ["", f"## {data}, {model} ({g.role.iloc[0]}; mean of {seeds[data, model]} "
                  "seed(s))", ""]
        lines += frame_table(g.drop(columns=["data", "model", "role"]), fmt)
    peers = against_peers(runs)
    summary = peers.groupby(["data", "model", "role", "peer", "bound"], dropna=False).agg(
        peer_gap=("peer_gap", "mean"), peer_accuracy=("peer_accuracy", "mean"),
        ours_accuracy=("ours_accuracy", "mean"),
        difference_points=("difference_points", "mean"),
        reached=("ours_accuracy", lambda v: int(v.notna().sum())),
        seeds=("seed", "nunique")).reset_index()
    lines += ["", "## Our accuracy at each peer's held-out gap", "",
              "Ours interpolated between our undominated points (with the unchanged "
              "model as the start) at the peer's gap, mean over seeds; `reached`: seeds whose "
              "front reaches a gap that small.", ""]
    lines += frame_table(summary, {"peer_gap": ".4f", "peer_accuracy": ".4f",
                                   "ours_accuracy": ".4f", "difference_points": "+.2f"})
    ours = runs[runs.method == "influence"].groupby(["data", "model", "bound"])
    held = ours.agg(mean_test_gap=("test_gap", "mean"), max_test_gap=("test_gap", "max"),
                    fits=("fits", "sum")).reset_index()
    lines += ["", "## Held-out gap at each bound (ours)", ""]
    lines += frame_table(held, {"mean_test_gap": ".4f", "max_test_gap": ".4f"})
    fits = runs.groupby(["data", "model", "method"])["fits"].sum().unstack()
    lines += ["", "## Fits, all bounds and seeds together", ""]
    lines += frame_table(fits.reset_index(), {c: ".0f" for c in fits.columns})
    lines += ["", "![fronts](fairness_front.png)"]
    fairness_plot(runs)
    return lines


def fairness_plot(runs: pd.DataFrame) -> None:
    """``results/fairness_front.png``: the held-out front of seed 0, per data and model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinfluence.plotting import plot_fairness_front

    groups = list(runs[runs.seed == runs.seed.min()].groupby(["data", "model"]))
    cols = 4
    fig, axes = plt.subplots(-(-len(groups) // cols), cols, squeeze=False,
                             figsize=(4.2 * cols, 3.6 * -(-len(groups) // cols)))
    for ax, ((data, model), g) in zip(axes.flat, groups, strict=False):
        plot_fairness_front(g[g.method != "none"], held_out=True, ax=ax)
        ax.set_title(f"{data}, {model}")
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / "fairness_front.png", dpi=110)
    plt.close(fig)


@report("fairness_dev")
def fairness_dev_md() -> list[str]:
    """The development runs (bench_fairness_dev.py): LogisticRegression, seed 100."""
    lines = ["# Fairness: the development runs behind the configuration", "",
             "LogisticRegression, development seed 100; every candidate measured on the "
             "validation and selection rows (no test rows).", ""]
    fmt = {c: ".4f" for c in ("val_gap", "val_accuracy", "sel_gap", "sel_accuracy")}
    for data in ("adult", "compas"):
        path = RESULTS_DIR / f"fairness_dev_{data}.csv"
        if path.exists():
            lines += [f"## {data}", "", *run_facts(path.stem), ""]
            lines += frame_table(pd.read_csv(path).drop(columns=["data", "seed"]),
                                 {**fmt, "seconds": ".1f"})
            lines.append("")
    return lines[:-1]
