"""The cleaning reports: tables from bench_cleaning, bench_detection and bench_damping."""

from __future__ import annotations

import pandas as pd
from harness import md_table, mean_std

from . import csv, frame_table, report, run_facts

SCENARIOS = {  # bench_cleaning's scenario -> (title, targeted metric, higher is better)
    "utility": ("utility (clean labels)", "test_acc", True),
    "noise20": ("utility, 20% uniform label noise in the training rows", "test_acc",
                True),
    "noise20_class": ("utility, 20% class-dependent label noise (negatives flipped "
                      "to positive)", "test_acc", True),
    "fairness_dp": ("fairness: demographic parity", "test_dp", False),
    "fairness_eo": ("fairness: equal opportunity", "test_eo", False),
    "robustness": ("robustness: FGSM", "test_rob", True),
}  # fmt: skip
METRIC = {"test_acc": "accuracy", "test_dp": "DP gap", "test_eo": "EO gap",
          "test_rob": "robust acc."}  # fmt: skip


def cleaning_rows(name: str) -> pd.DataFrame:
    """``results/<name>.csv`` of bench_cleaning, ready for the tables.

    The rows shared by the clean-label scenarios (no pruning, random, loss:
    scenario "clean") are repeated under each; ``d_acc``: the test accuracy
    minus that without pruning, per seed.
    """
    from bench_cleaning import CLEAN_SCENARIOS

    df = csv(name)
    clean = df[df.scenario == "clean"]
    df = pd.concat([df[df.scenario != "clean"]]
                   + [clean.assign(scenario=s) for s in CLEAN_SCENARIOS])  # fmt: skip
    df["ratio"] = df["ratio"].round(4)
    keys = ["dataset", "model", "scenario", "seed"]
    none = df[df.method == "none"].set_index(keys)["test_acc"]
    df["d_acc"] = df.test_acc - none.reindex(pd.MultiIndex.from_frame(df[keys])).values
    return df


def combos(df) -> list[tuple[str, str]]:
    """The (data set, model) pairs of ``df``, in the order they were run."""
    return list(dict.fromkeys(zip(df.dataset, df.model, strict=True)))


def pick(df, ds, kind, scn, method, ratio=None) -> pd.DataFrame:
    """The rows of one cell (``ratio`` None: no ratio, as for "none")."""
    m = (df.dataset == ds) & (df.model == kind) & (df.scenario == scn)
    m &= df.ratio.isna() if ratio is None else df.ratio == round(ratio, 4)
    return df[m & (df.method == method)]


def names_for(kind: str, noisy: bool) -> list[str]:
    """Influence methods, then baselines, then cleanlab, as run on ``kind``."""
    from bench_cleaning import BASELINES, methods_for

    return [*methods_for(kind), *BASELINES] + ["cleanlab"] * noisy


def fairness_tables(df, at=0.05) -> list[str]:
    """Demographic-parity objective: the gap at ``at`` pruned; its fall per ratio."""
    fair = df[df.scenario == "fairness_dp"]
    ratios, rows, falls = sorted(fair.ratio.dropna().unique()), [], []
    for ds, kind in combos(fair):
        none = pick(fair, ds, kind, "fairness_dp", "none")
        dp0, acc0 = none.test_dp.mean(), none.test_acc.mean()
        for m in names_for(kind, False):
            cells = []
            for r in ratios:
                sel = pick(fair, ds, kind, "fairness_dp", m, r)
                dp, dacc = sel.test_dp.mean(), 100 * (sel.test_acc.mean() - acc0)
                cells.append(f"{1 - dp / dp0:.0%} ({dacc:+.2f})")
                if r == at:
                    rows.append([ds, kind, m, len(sel), f"{dp0:.3f} -> {dp:.3f}",
                                 f"{100 * (dp / dp0 - 1):+.1f}%", f"{dacc:+.2f}"])  # fmt: skip
            falls.append([ds, kind, m, *cells])
    head = ["data set", "model", "method", "seeds", "DP gap (none -> pruned)",
            "DP change", "accuracy change (points)"]  # fmt: skip
    return [
        f"## Demographic parity at {at:.0%} pruned", "",
        "Objective: demographic parity; test DP gap and accuracy, means over seeds.",
        "", *md_table(head, rows), "",
        "Fall of the test DP gap (accuracy change, points) per ratio pruned:", "",
        *md_table(["data set", "model", "method", *(f"{r:g}" for r in ratios)], falls),
        "",
    ]  # fmt: skip


def noise_table(df, group: str) -> list[str]:
    """Recovery of the accuracy the label noise of ``group`` cost, per method.

    Recovery = (acc pruned - acc noisy) / (acc clean - acc noisy), means over
    seeds; the ratio is chosen per seed on the validation accuracy.
    """

    head = ["data set", "model", "acc clean / noisy (cost, points)", "method",
            "recovery (val-chosen ratio)", "Δ acc vs noisy (points, paired)",
            "recovery at 0.1", "at 0.2", "ratios chosen"]  # fmt: skip
    rows, noisy = [], df[df.scenario == group]
    for ds, kind in combos(noisy):
        a_clean = pick(df, ds, kind, "utility", "none").test_acc.mean()
        a_noisy = pick(noisy, ds, kind, group, "none").test_acc.mean()
        cost = a_clean - a_noisy
        lead = [ds, kind, f"{a_clean:.4f} / {a_noisy:.4f} ({100 * cost:+.2f})"]

        def recovery(sel):
            return f"{(sel.test_acc.mean() - a_noisy) / cost:.0%}" if len(sel) else "—"

        for m in [*names_for(kind, True), "cleanlab_flags"]:
            if m == "cleanlab_flags":  # its own flags, its own count
                sel = pick(noisy, ds, kind, group, m)
                chosen = "own: " + ", ".join(f"{x:.2f}" for x in sel.n_removed / sel.n_train)
            else:  # per seed, the ratio with the best validation accuracy
                some = noisy[(noisy.dataset == ds) & (noisy.model == kind)]
                some = some[(some.method == m) & some.ratio.notna()]
                sel = some.loc[some.groupby("seed", sort=False).val_acc.idxmax().values]
                chosen = ", ".join(f"{x:g}" for x in sel.ratio)
            fixed = [recovery(pick(noisy, ds, kind, group, m, r)) for r in (0.1, 0.2)]
            delta = mean_std(sel.d_acc, scale=100, digits=2)
            rows.append([*lead, m, recovery(sel), delta, *fixed, chosen])
    return md_table(head, rows) + [""]


def summary_table(df, at=0.05) -> list[str]:
    """Per (data set, model, scenario): the targeted test metric at ``at`` pruned."""
    from bench_cleaning import BASELINES, INFLUENCE

    names, rows = [*INFLUENCE, *BASELINES, "cleanlab"], []
    for (ds, kind), scn in ((c, s) for c in combos(df) for s in SCENARIOS):
        _, col, higher = SCENARIOS[scn]
        if not len(none := pick(df, ds, kind, scn, "none")):
            continue
        vals = {}
        for m in names:
            if len(sel := pick(df, ds, kind, scn, m, at)):
                dacc = 100 * (sel.test_acc.mean() - none.test_acc.mean())
                vals[m] = (sel[col].mean(), dacc)
        infl = [v for m, (v, _) in vals.items() if m in INFLUENCE]
        best = round((max if higher else min)(infl), 3)
        cells = ["—" if m not in vals else
                 ("**{:.3f}**" if m in INFLUENCE and round(vals[m][0], 3) == best
                  else "{:.3f}").format(vals[m][0]) + f" ({vals[m][1]:+.2f})"
                 for m in names]  # fmt: skip
        metric = f"{METRIC[col]} ({'higher' if higher else 'lower'} is better)"
        rows.append([ds, kind, scn, metric, f"{none[col].mean():.3f}", *cells])
    return [
        f"## Summary at {at:.0%} pruned", "",
        "Each cell: the test metric the scenario's objective targets (mean over "
        "seeds), then the accuracy change in points against no pruning. Best "
        "influence method per line in bold (ties included).", "",
        *md_table(["data set", "model", "scenario", "metric", "none", *names], rows),
        "",
    ]  # fmt: skip


def detail_table(d, ds, kind, scn) -> list[str]:
    """Every method and ratio of one scenario: mean ± std over seeds."""

    noisy = scn.startswith("noise")
    head = ["method", "pruned", "test accuracy", "Δ accuracy (points, paired)",
            "DP gap", "EO gap", "robust accuracy (FGSM)"]  # fmt: skip
    head += ["flipped share of removed"] * noisy
    rows = []

    def line(label, pruned, r):
        paired = "—" if label == "none" else mean_std(r.d_acc, scale=100, digits=2)
        share = r.flipped_removed / r.n_removed.where(r.n_removed > 0)
        rows.append([label, pruned, mean_std(r.test_acc, digits=4), paired,
                     mean_std(r.test_dp), mean_std(r.test_eo), mean_std(r.test_rob)]
                    + ["—" if label == "none" else mean_std(share, digits=2)] * noisy)  # fmt: skip

    line("none", "0", pick(d, ds, kind, scn, "none"))
    for r in sorted(d.ratio.dropna().unique()):
        for m in names_for(kind, noisy):
            if len(sel := pick(d, ds, kind, scn, m, r)):
                line(m, f"{r:g}", sel)
    if len(own := pick(d, ds, kind, scn, "cleanlab_flags")):
        line("cleanlab (own flags)", f"{(own.n_removed / own.n_train).mean():.3f}", own)
    return [f"#### {SCENARIOS[scn][0]}", "", *md_table(head, rows), ""]


def cleaning_md(name: str) -> list[str]:
    """``results/<name>.md`` of bench_cleaning: fairness, noise, summary, details."""
    df = cleaning_rows(name)
    quick = " (smoke run: reduced data, seeds and epochs)" * name.endswith("_quick")
    facts = run_facts(name) or ["> No run facts: the run is unfinished."]
    out = [f"# Cleaning-quality benchmark{quick}", "", *facts, "", *fairness_tables(df)]
    for group in ("noise20", "noise20_class"):
        out += [f"## Label noise: {SCENARIOS[group][0]}", "", *noise_table(df, group)]
    out += summary_table(df)
    for ds, kind in combos(df):
        d = df[(df.dataset == ds) & (df.model == kind)]
        model = "skorch MLP" if kind == "mlp" else "LogisticRegression"
        seeds = f"Seeds {sorted(set(d.seed.tolist()))}; {d.n_train.iloc[0]} training rows."
        out += [f"## {ds} / {model}", "", seeds, ""]
        for scn in SCENARIOS:
            out += detail_table(d, ds, kind, scn) if (d.scenario == scn).any() else []
    return out


report("cleaning")(lambda: cleaning_md("cleaning"))
report("cleaning_quick")(lambda: cleaning_md("cleaning_quick"))


@report("detection")
def detection_md(name: str = "detection") -> list[str]:
    """F1 and ROC AUC of each detector per scenario, mean ± std over seeds."""
    df = csv(name)

    def cell(r, metric):
        mean, std = r[f"{metric}_mean"], r[f"{metric}_std"]
        return "—" if pd.isna(mean) else f"{mean:.3f} ± {std:.3f}"

    out = ["# Detection benchmark", "", *run_facts(name), ""]
    for ds, d in df.groupby("dataset", sort=False):
        scs = list(dict.fromkeys(d.scenario))
        by = {(r.detector, r.scenario): r for _, r in d.iterrows()}
        head = ["detector"] + [f"{s} {m}" for s in scs for m in ("F1", "AUC")]
        rows = [[k] + [cell(by[(k, s)], m) for s in scs for m in ("f1", "auc")]
                for k in dict.fromkeys(d.detector)]  # fmt: skip
        sizes = d.drop_duplicates("scenario")
        sizes = ", ".join(f"{r.scenario} {r.n_train}" for r in sizes.itertuples())
        out += [f"## {ds}", "", f"Mean ± std over {d.n_seeds.max()} seeds.", "",
                *md_table(head, rows), "", f"Training rows per scenario: {sizes}.", ""]  # fmt: skip
    return out


@report("damping")
def damping_md(name: str = "damping") -> list[str]:
    """LDS per relative damping and cell, CG within 200 iterations, the trace."""
    df = csv(name)
    df["cell"] = df.dataset + " " + df.model + " " + df.objective
    lds = df.pivot_table(index="damping", columns="cell", values="lds", sort=False)
    lds = lds.assign(mean=lds.mean(axis=1, skipna=False),
                     min=lds.min(axis=1, skipna=False))  # fmt: skip
    cg = df.dropna(subset=["within_200"]).groupby("damping", sort=False).within_200
    lds["CG within 200 it. (all cells)"] = cg.all().reindex(lds.index).map(
        {True: "yes", False: "no"})  # fmt: skip
    rows = [[k, *("—" if pd.isna(v) else v if isinstance(v, str) else f"{v:.3f}"
                  for v in r)] for k, r in lds.iterrows()]  # fmt: skip
    names = {"trace_per_param": "trace / P (seeded)", "exact_trace_per_param": "exact"}
    trace = df.drop_duplicates(["dataset", "model"]).rename(columns=names)
    trace = trace[["dataset", "model", "P", *names.values()]]
    return [
        "# Damping of the influence function", "", *run_facts(name), "",
        "LDS against retraining per relative damping (lambda = damping x trace/P):",
        "", *md_table(["damping", *lds.columns], rows, "l" + "r" * len(lds.columns)),
        "", "The curvature's scale:", "",
        *frame_table(trace, {"trace / P (seeded)": ".4g", "exact": ".4g"}), "",
    ]  # fmt: skip
