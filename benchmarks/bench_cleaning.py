"""Cleaning-quality benchmark: what pruning by influence does to test metrics.

Run from the repository root (what it measures: ``benchmarks/README.md``)::

    python benchmarks/bench_cleaning.py          # full run -> results/cleaning.csv
    python benchmarks/bench_cleaning.py --quick  # smoke run -> cleaning_quick.csv
    python benchmarks/report.py cleaning         # the tables: results/cleaning.md

One CSV row per refit, appended as it comes; a rerun with the same options
(saved in ``results/<name>.json``) resumes, skipping the rows written. Once
all is done, ``harness.write_csv`` writes the final CSV and the run's facts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from harness import (
    RESULTS_DIR,
    append_csv,
    cleanlab_ranking,
    encode,
    git_commit,
    load_dataset,
    log,
    make_logreg,
    make_mlp,
    read_csv,
    set_threads,
    split_rows,
    stopwatch,
    write_csv,
)
from sklearn.exceptions import ConvergenceWarning

from skinfluence import (
    InfluenceFilter,
    InfluenceFunction,
    IPEnsemble,
    Method,
    as_torch_model,
    metrics,
)
from skinfluence.datasets import flip_labels
from skinfluence.objectives import Fairness, Robustness

DATASETS = ("adult", "compas")
MODELS = ("mlp", "logreg")
CLEAN_SCENARIOS = ("utility", "fairness_dp", "fairness_eo", "robustness")
NOISE_GROUPS = {"noise20": "uniform", "noise20_class": "class"}  # -> flip_labels kind
NOISE_RATE = 0.20
INFLUENCE = ("ip", "ip_ensemble", "tracin", "influence_function")
BASELINES = ("random", "loss")  # scored once per group, on the utility objective
CSV_COLUMNS = [
    "dataset", "model", "seed", "scenario", "method", "ratio", "n_train",
    "n_removed", "flipped_removed", "test_acc", "test_dp", "test_eo",
    "test_rob", "val_acc", "val_dp", "val_eo", "val_rob", "score_s", "fit_s",
    "note",
]  # fmt: skip


def methods_for(kind: str) -> list[str]:
    """The influence methods run on a model kind: no trajectory, no TracIn."""
    return [m for m in INFLUENCE if m != "tracin" or kind == "mlp"]


def make_config(args) -> dict:
    q = args.quick
    cfg = {
        "quick": q, "seeds": [0, 1] if q else [0, 1, 2, 3, 4],
        "datasets": list(DATASETS), "models": list(MODELS),
        "ratios": [0.05, 0.1] if q else [0.01, 0.02, 0.05, 0.1],
        "noise_extra_ratios": [0.2], "noise_groups": list(NOISE_GROUPS),
        "adult_train": 3000 if q else 15000, "adult_val": 1500 if q else 5000,
        "adult_test": 5000 if q else None,  # None: all the other rows
        "compas_fractions": [0.6, 0.2, 0.2],
        "mlp_hidden": 64, "mlp_epochs": 8 if q else 20, "mlp_batch": 256,
        "mlp_lr": 0.01, "mlp_momentum": 0.9, "logreg_C": 1.0, "epsilon": args.epsilon,
        "ensemble": {"n_members": 10, "max_dropout": 0.01},
        "if_mlp": {"solver": "cg", "max_iter": 50 if q else 200},  # damping "auto"
        "if_logreg": {"solver": "exact", "damping": 0.0},
        "cleanlab_folds": 5, "batch_size": 2048,
        "selection": "InfluenceFilter",  # InfluenceFilter drops floor(r n) rows
    }  # fmt: skip
    for key in ("seeds", "datasets", "models"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    return cfg


def load_split(name: str, seed: int, cfg: dict) -> dict:
    """Encoded train / validation / test rows of one seed (label x group strata)."""
    X, y, s = load_dataset(name, two_races=True)
    if name == "adult":
        n_tr, n_va, n_te = cfg["adult_train"], cfg["adult_val"], cfg["adult_test"]
    else:
        f_tr, f_va, _ = cfg["compas_fractions"]
        n_tr, n_va, n_te = round(f_tr * len(X)), round(f_va * len(X)), None
    strata = np.char.add(y.astype(str), s.astype(str))
    i_tr, i_rest = split_rows(strata, n_tr, None, seed)
    i_va, i_te = (i_rest[i] for i in split_rows(strata[i_rest], n_va, None, seed))
    i_te = i_te[:n_te]
    X_tr, X_va, X_te = encode(X.iloc[i_tr], X.iloc[i_va], X.iloc[i_te])
    return {
        "X_train": X_tr, "y_train": y[i_tr], "s_train": s[i_tr],
        "X_val": X_va, "y_val": y[i_va], "s_val": s[i_va],
        "X_test": X_te, "y_test": y[i_te], "s_test": s[i_te],
    }  # fmt: skip


def make_model(kind: str, n_features: int, cfg: dict):
    if kind == "logreg":
        return make_logreg(cfg["logreg_C"])
    return make_mlp(
        n_features, hidden=(cfg["mlp_hidden"],), lr=cfg["mlp_lr"],
        momentum=cfg["mlp_momentum"], batch_size=cfg["mlp_batch"],
        epochs=cfg["mlp_epochs"], checkpoints=True,
    )  # fmt: skip


def as_input(kind: str, X):
    """The model's input dtype: float64 for LogisticRegression, else as is."""
    return X.astype(np.float64) if kind == "logreg" else X


def objective_of(scenario: str, cfg: dict):
    fair = {"fairness_dp": "demographic_parity", "fairness_eo": "equal_opportunity"}
    if scenario in fair:
        return Fairness(metric=fair[scenario])
    robust = scenario == "robustness"
    return Robustness(attack="fgsm", epsilon=cfg["epsilon"]) if robust else "utility"


def method_of(name: str, kind: str, cfg: dict):
    if name == "ip_ensemble":
        return IPEnsemble(**cfg["ensemble"])
    if name == "influence_function":
        return InfluenceFunction(**cfg["if_mlp" if kind == "mlp" else "if_logreg"])
    return name


class GivenScores(Method):
    """Scores computed elsewhere (cleanlab's), for InfluenceFilter to act on."""

    needs_objective = False

    def __init__(self, scores=None):
        self.scores = scores

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        return torch.as_tensor(np.asarray(self.scores, dtype=np.float64))


@dataclass
class Group:
    """One (data set, model, seed) on clean ("clean") or noisy training rows."""

    ds: str
    kind: str
    seed: int
    name: str  # "clean" or a key of NOISE_GROUPS
    cfg: dict

    def load(self, d: dict) -> Group:
        """Attach the split ``d`` (see load_split) and the training labels."""
        self.d, self.y, self.flipped = d, d["y_train"], np.zeros(len(d["y_train"]), bool)
        if self.noisy:
            y, mask = flip_labels(self.y, NOISE_RATE, kind=NOISE_GROUPS[self.name],
                                  random_state=1000 + self.seed)  # fmt: skip
            self.y, self.flipped = np.asarray(y, np.int64), np.asarray(mask, bool)
        return self

    @property
    def noisy(self) -> bool:
        return self.name in NOISE_GROUPS

    @property
    def ratios(self) -> list[float]:
        return self.cfg["ratios"] + self.cfg["noise_extra_ratios"] * self.noisy

    def key(self, scenario: str, method: str, ratio) -> tuple:
        return self.ds, self.kind, self.seed, scenario, method, ratio_key(ratio)

    def todo(self, done: set) -> list[tuple[str, str]]:
        """The (scenario, method) pairs with rows missing ("none" first)."""
        scenarios = [self.name] if self.noisy else CLEAN_SCENARIOS
        pairs = [(self.name, m) for m in ("none", *BASELINES)]
        pairs += [(s, m) for s in scenarios for m in methods_for(self.kind)]
        pairs += [(self.name, "cleanlab")] * self.noisy

        def keys(s, m):
            ratios = [None] if m == "none" else self.ratios
            own = [self.key(s, "cleanlab_flags", None)] if m == "cleanlab" else []
            return [self.key(s, m, r) for r in ratios] + own

        return [(s, m) for s, m in pairs if any(k not in done for k in keys(s, m))]


def ratio_key(ratio) -> str:
    return "nan" if ratio is None or ratio != ratio else f"{float(ratio):.4f}"


def row_key(r) -> tuple:
    """The identity of a CSV row: what a resumed run does not recompute."""
    keys = (r["dataset"], r["model"], int(r["seed"]), r["scenario"], r["method"])
    return keys + (ratio_key(r["ratio"]),)


def fit_filter(g: Group, method, objective, ratio, memory):
    """The group's ``InfluenceFilter``, fitted: (filter, seconds, solver warnings)."""
    d, inp = g.d, (lambda X: as_input(g.kind, X))
    flt = InfluenceFilter(
        make_model(g.kind, d["X_train"].shape[1], g.cfg), objective=objective,
        method=method, prune_ratio=ratio, batch_size=g.cfg["batch_size"],
        memory=memory, random_state=g.seed,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught, stopwatch() as sw:
        warnings.simplefilter("ignore")
        for kind in (RuntimeWarning, ConvergenceWarning):
            warnings.simplefilter("always", kind)
        flt.fit(inp(d["X_train"]), g.y, X_val=inp(d["X_val"]), y_val=d["y_val"],
                sensitive_features_val=d["s_val"])  # fmt: skip
    notes = sorted({str(w.message).split(":")[0] for w in caught})
    return flt, sw["seconds"], "; ".join(notes)


def evaluate(kind: str, est, d: dict, cfg: dict) -> dict:
    """Accuracy, DP gap, EO gap and FGSM robust accuracy (attacking ``est``)."""
    attack = Robustness(attack="fgsm", epsilon=cfg["epsilon"])
    tm, out = as_torch_model(est), {}
    for part in ("val", "test"):
        X, y, s = as_input(kind, d[f"X_{part}"]), d[f"y_{part}"], d[f"s_{part}"]
        pred = np.asarray(est.predict(X))
        out[f"{part}_acc"] = float(np.mean(pred == y))
        for gap, fn in (("dp", metrics.demographic_parity_difference),
                        ("eo", metrics.equal_opportunity_difference)):  # fmt: skip
            out[f"{part}_{gap}"] = fn(y, pred, sensitive_features=s)
        X_adv = attack.perturb(tm, tm.prepare_X(X), tm.prepare_y(y)).numpy()
        out[f"{part}_rob"] = float(np.mean(est.predict(X_adv.astype(X.dtype)) == y))
    return out


class Sink:
    """Where result rows go: the CSV (appended at once) and the done set."""

    def __init__(self, path, done: set):
        self.path, self.done = path, done

    def __call__(self, g, scenario, method, ratio, flt, score_s, fit_s, note=""):
        """Write the row of a fitted filter; a short summary for the log."""
        removed = np.zeros(len(g.y), bool)
        removed[flt.removed_indices_] = True
        row = {
            "dataset": g.ds, "model": g.kind, "seed": g.seed, "scenario": scenario,
            "method": method, "ratio": ratio, "n_train": len(g.y),
            "n_removed": int(removed.sum()),
            "flipped_removed": int((removed & g.flipped).sum()),
            "score_s": score_s, "fit_s": fit_s, "note": note,
            **evaluate(g.kind, flt.estimator_, g.d, g.cfg),
        }  # fmt: skip
        append_csv(self.path, [row], CSV_COLUMNS)
        self.done.add(row_key(row))
        return (f"{ratio:g}: acc {row['test_acc']:.4f} dp {row['test_dp']:.3f} "
                f"flip {row['flipped_removed']}/{row['n_removed']}")  # fmt: skip


def run_ratios(g, scn, name, method, objective, score_s, memory, sink) -> list[str]:
    """One method's refits at every missing ratio; ``score_s`` its scoring time."""
    parts = []
    for ratio in g.ratios:
        if g.key(scn, name, ratio) not in sink.done:
            flt, fit_s, note = fit_filter(g, method, objective, ratio, memory)
            parts.append(sink(g, scn, name, ratio, flt, score_s, fit_s, note))
    return parts


def run_pair(g: Group, scn: str, name: str, memory, base_s: float, sink) -> list:
    """An influence method, a baseline or cleanlab: score once, then each ratio."""
    if name != "cleanlab":
        objective = "utility" if name in BASELINES else objective_of(scn, g.cfg)
        method = method_of(name, g.kind, g.cfg)
        # prune_ratio=0: the first fit and its scores, which memory caches
        _, first_s, note = fit_filter(g, method, objective, 0.0, memory)
        if note:
            log(f"  note {name}/{scn}: {note}")
        score_s = max(0.0, first_s - base_s)
        return run_ratios(g, scn, name, method, objective, score_s, memory, sink)
    X, folds = g.d["X_train"], g.cfg["cleanlab_folds"]
    model = make_model(g.kind, X.shape[1], g.cfg)
    with stopwatch() as sw:
        quality, flags = cleanlab_ranking(model, as_input(g.kind, X), g.y, folds, g.seed)
    ranked, t = GivenScores(quality), sw["seconds"]
    parts = run_ratios(g, scn, name, ranked, "utility", t, memory, sink)
    if g.key(scn, "cleanlab_flags", None) not in sink.done:  # its own flags and count
        own = GivenScores(np.where(flags, -1.0, 1.0))
        flt, fit_s, _ = fit_filter(g, own, "utility", "negative", memory)
        parts.append("own " + sink(g, scn, "cleanlab_flags", np.nan, flt, t, fit_s))
    return parts


def run_group(g: Group, pending: list, sink: Sink) -> None:
    """Every missing row of the group."""
    tag = f"{g.ds}/{g.kind}/seed {g.seed}"
    memory = tempfile.mkdtemp(prefix="bench-cleaning-")
    try:
        # no pruning: the first fit (its time is the base of the scoring times)
        base, base_s, _ = fit_filter(g, "random", "utility", 0.0, memory)
        for scn, name in pending:
            with stopwatch() as sw:
                if name == "none":
                    parts = [sink(g, scn, "none", np.nan, base, 0.0, base_s)]
                else:
                    parts = run_pair(g, scn, name, memory, base_s, sink)
            log(f"  {tag}/{scn}: {name} ({sw['seconds']:.1f}s) | " + " | ".join(parts))
    finally:
        shutil.rmtree(memory, ignore_errors=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="reduced smoke run")
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--datasets", nargs="+", choices=DATASETS)
    p.add_argument("--models", nargs="+", choices=MODELS)
    p.add_argument("--epsilon", type=float, default=0.1, help="FGSM radius")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--fresh", action="store_true", help="discard the CSV, start over")
    p.add_argument("--out", help="results name (default cleaning / cleaning_quick)")
    return p.parse_args(argv)


def load_state(path, cfg: dict, fresh: bool) -> dict:
    """The saved run state (its configuration must be ``cfg``), or a new one."""
    state = {"config": cfg, "compute_s": 0.0, "commit": None, "date": None}
    if path.exists() and not fresh:
        state.update(json.loads(path.read_text()))
        if state["config"] != cfg:
            sys.exit(f"{path.name} holds another configuration: rerun with --fresh "
                     f"or its options.\nsaved: {state['config']}\nnow: {cfg}")  # fmt: skip
    commit = git_commit()
    if state["commit"] is None:
        state["commit"], state["date"] = commit, datetime.date.today().isoformat()
    elif commit not in state["commit"]:
        state["commit"] += f", resumed at {commit}"
    return state


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    cfg = make_config(args)
    name = args.out or ("cleaning_quick" if args.quick else "cleaning")
    csv, state_path = RESULTS_DIR / f"{name}.csv", RESULTS_DIR / f"{name}.json"
    facts_path = RESULTS_DIR / f"{name}.run.json"
    if args.fresh:
        csv.unlink(missing_ok=True)
    state = load_state(state_path, cfg, args.fresh)
    done = {row_key(r) for r in read_csv(csv, CSV_COLUMNS).to_dict("records")}
    sink = Sink(csv, done)
    log(f"config: {json.dumps(cfg)}; at {state['commit']}; {len(done)} rows done")
    groups = [Group(ds, kind, seed, g, cfg) for ds in cfg["datasets"]
              for kind in cfg["models"] for seed in cfg["seeds"]
              for g in ("clean", *cfg["noise_groups"])]  # fmt: skip
    data = {}
    for i, g in enumerate(groups):
        if not (pending := g.todo(done)):
            continue
        facts_path.unlink(missing_ok=True)  # the run is unfinished
        log(f"group {i + 1}/{len(groups)}: {g.ds}/{g.kind}/seed {g.seed}/{g.name}")
        if (g.ds, g.seed) not in data:
            data = {(g.ds, g.seed): load_split(g.ds, g.seed, cfg)}
        with stopwatch() as sw:
            run_group(g.load(data[(g.ds, g.seed)]), pending, sink)
        state["compute_s"] += sw["seconds"]
        state_path.write_text(json.dumps(state, indent=1))
    if not facts_path.exists():  # complete: the final CSV and the run's facts
        write_csv(name, read_csv(csv, CSV_COLUMNS), argv=argv)
        facts = json.loads(facts_path.read_text())
        facts["header"].append(f"- Compute time {state['compute_s'] / 60:.1f} min; "
                               f"started on {state['date']} at {state['commit']}")  # fmt: skip
        facts_path.write_text(json.dumps(facts, indent=1) + "\n")
    log(f"done; the tables: python benchmarks/report.py {name}")


if __name__ == "__main__":
    main()
