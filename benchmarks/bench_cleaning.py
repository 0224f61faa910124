"""Cleaning-quality benchmark: what pruning by influence does to test metrics.

Run from the repository root::

    python benchmarks/bench_cleaning.py            # full run (~30 min on 2 cores)
    python benchmarks/bench_cleaning.py --quick    # reduced smoke run (a few min)
    python benchmarks/bench_cleaning.py --render   # rebuild the tables from the CSV

For Adult (sex) and COMPAS (race, African-American vs Caucasian rows), a
skorch MLP and a LogisticRegression, and 5 seeds, every row of a
train / validation / test split is used as follows:

* train: the rows that are scored and pruned (20% of their labels flipped
  uniformly in the ``noise20`` scenario, and, as an extra scenario,
  class-dependently in ``noise20_class``; validation and test stay clean);
* validation: the influence target (the objective J) and the only split
  used for choosing anything (the prune ratio in the noise target);
* test: reported only.

Per (data set, model, seed) the model is fitted once on the clean training
rows and once on the noisy ones. Each method scores the rows once per
objective (utility, demographic parity, equal opportunity, FGSM robustness;
utility only on the noisy rows), then the model is refitted, from the same
seed, on the rows kept at each prune ratio. Baselines: no pruning, random,
loss and, with label noise, cleanlab (label-quality ranking on 5-fold
cross-validated probabilities of the same model, pruning the same number of
rows, and cleanlab's own ``find_label_issues`` flags). Every refit is scored
on the test rows: accuracy, demographic-parity gap, equal-opportunity gap
and accuracy under an FGSM attack computed against that refitted model.

Results are appended to ``benchmarks/results/cleaning.csv`` as they come
(the run resumes from it: rows already there are not recomputed), and the
Markdown tables ``benchmarks/results/cleaning.md`` are rebuilt from the CSV
after each (data set, model, seed, scenario) group, marked PARTIAL until the
run is complete. ``--quick`` writes ``cleaning_quick.{csv,md}`` instead.

To keep a long run immune to edits of the working tree, it can import a
snapshot of the package (the tables then name its commit)::

    git archive HEAD skinfluence | tar -x -C /tmp/snap && git rev-parse --short HEAD > /tmp/snap/COMMIT
    PYTHONPATH=/tmp/snap nohup python benchmarks/bench_cleaning.py > cleaning.log &
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from cleaning_report import (
    BASELINES,
    CLEAN_SCENARIOS,
    DATASETS,
    MODELS,
    NOISE_GROUPS,
    NOISE_RATE,
    methods_for,
    render,
)
from harness import (
    RESULTS_DIR,
    append_csv,
    encode,
    git_commit,
    load_dataset,
    log,
    make_logreg,
    make_mlp,
    read_csv,
    run_header,
    set_threads,
    split_rows,
    stopwatch,
)

from skinfluence import (
    InfluenceFilter,
    InfluenceFunction,
    IPEnsemble,
    Method,
    as_torch_model,
)
from skinfluence.datasets import flip_labels
from skinfluence.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
)
from skinfluence.objectives import Fairness, Robustness

CSV_COLUMNS = [
    "dataset", "model", "seed", "scenario", "method", "ratio", "n_train",
    "n_removed", "flipped_removed", "test_acc", "test_dp", "test_eo",
    "test_rob", "val_acc", "val_dp", "val_eo", "val_rob", "score_s", "fit_s",
    "note",
]  # fmt: skip


# ---------------------------------------------------------------- config
def make_config(args) -> dict:
    quick = args.quick
    cfg = {
        "quick": quick,
        "seeds": [0, 1] if quick else [0, 1, 2, 3, 4],
        "datasets": list(DATASETS),
        "models": list(MODELS),
        "ratios": [0.05, 0.1] if quick else [0.01, 0.02, 0.05, 0.1],
        "noise_extra_ratios": [0.2],
        "noise_groups": list(NOISE_GROUPS),
        "adult_train": 3000 if quick else 15000,
        "adult_val": 1500 if quick else 5000,
        "adult_test": 5000 if quick else None,  # None: all the other rows
        "compas_fractions": [0.6, 0.2, 0.2],
        "mlp_hidden": 64,
        "mlp_epochs": 8 if quick else 20,
        "mlp_batch": 256,
        "mlp_lr": 0.01,
        "mlp_momentum": 0.9,
        "logreg_C": 1.0,
        "epsilon": args.epsilon,
        "ensemble": {"n_members": 10, "max_dropout": 0.01},
        "if_mlp": {"solver": "cg", "damping": 0.1, "max_iter": 50 if quick else 200},
        "if_logreg": {"solver": "exact", "damping": 0.0},
        "cleanlab_folds": 5,
        "batch_size": 2048,
        # rows selected and refitted by InfluenceFilter (floor(r n) rows);
        # CSVs without this key came from the script's own round(r n) selection
        "selection": "InfluenceFilter",
    }
    for key in ("seeds", "datasets", "models"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    return cfg


# ------------------------------------------------------------------ data
def load_split(name: str, seed: int, cfg: dict) -> dict:
    """Preprocessed train / validation / test rows of one seed.

    Stratified by label x group. The scaler and one-hot encoder are fitted on
    the training rows. Sensitive features: sex (Adult), race (COMPAS, the
    African-American and Caucasian rows only).
    """
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


# ---------------------------------------------------------------- models
def make_model(kind: str, n_features: int, cfg: dict):
    if kind == "logreg":
        return make_logreg(cfg["logreg_C"])
    return make_mlp(
        n_features,
        hidden=(cfg["mlp_hidden"],),
        lr=cfg["mlp_lr"],
        momentum=cfg["mlp_momentum"],
        batch_size=cfg["mlp_batch"],
        epochs=cfg["mlp_epochs"],
        checkpoints=True,
    )


def as_input(kind: str, X):
    """The model's input dtype: float64 for LogisticRegression, else as is."""
    return X.astype(np.float64) if kind == "logreg" else X


def objective_of(scenario: str, cfg: dict):
    if scenario == "utility" or scenario in NOISE_GROUPS:
        return "utility"
    if scenario == "fairness_dp":
        return Fairness(metric="demographic_parity")
    if scenario == "fairness_eo":
        return Fairness(metric="equal_opportunity")
    return Robustness(attack="fgsm", epsilon=cfg["epsilon"])


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


def cleanlab_scores(kind: str, X, y, seed: int, cfg: dict):
    """Label quality on K-fold CV probabilities, and find_label_issues' flags."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = cross_val_predict(
            make_model(kind, X.shape[1], cfg),
            as_input(kind, X),
            y,
            cv=StratifiedKFold(cfg["cleanlab_folds"], shuffle=True, random_state=seed),
            method="predict_proba",
        )
    quality = get_label_quality_scores(y, probs)  # self-confidence, low = suspect
    flags = find_label_issues(y, probs)
    return np.asarray(quality, dtype=np.float64), np.asarray(flags, dtype=bool)


# ------------------------------------------------------------------ group
@dataclass
class Group:
    """One (data set, model, seed) on clean ("clean") or noisy training rows."""

    ds: str
    kind: str
    seed: int
    name: str  # "clean" or a key of NOISE_GROUPS
    d: dict  # the split, see load_split
    cfg: dict
    y: np.ndarray = None  # training labels (flipped in a noisy group)
    flipped: np.ndarray = None

    def __post_init__(self):
        y = self.d["y_train"]
        self.y, self.flipped = y, np.zeros(len(y), bool)
        if self.noisy:
            y, mask = flip_labels(
                y,
                NOISE_RATE,
                kind=NOISE_GROUPS[self.name],
                random_state=1000 + self.seed,
            )
            self.y, self.flipped = np.asarray(y, np.int64), np.asarray(mask, bool)

    @property
    def noisy(self) -> bool:
        return self.name in NOISE_GROUPS

    @property
    def scenarios(self) -> list[str]:
        return [self.name] if self.noisy else list(CLEAN_SCENARIOS)

    @property
    def ratios(self) -> list[float]:
        extra = self.cfg["noise_extra_ratios"] if self.noisy else []
        return self.cfg["ratios"] + extra

    def key(self, scenario: str, method: str, ratio) -> tuple:
        return row_key(
            {"dataset": self.ds, "model": self.kind, "seed": self.seed,
             "scenario": scenario, "method": method, "ratio": ratio}
        )  # fmt: skip


def row_key(r) -> tuple:
    """The identity of a CSV row: what a resumed run does not recompute."""
    ratio = r["ratio"]
    ratio = (
        "nan"
        if ratio is None or (isinstance(ratio, float) and math.isnan(ratio))
        else f"{float(ratio):.4f}"
    )
    return (r["dataset"], r["model"], int(r["seed"]), r["scenario"], r["method"], ratio)


def todo(g: Group, done: set) -> list[tuple[str, str]]:
    """The (scenario, method) pairs of ``g`` with rows still missing."""

    def missing(scn, m):
        return any(g.key(scn, m, r) not in done for r in g.ratios)

    out = [(g.name, m) for m in BASELINES if missing(g.name, m)]
    out += [(s, m) for s in g.scenarios for m in methods_for(g.kind) if missing(s, m)]
    if g.noisy and (
        missing(g.name, "cleanlab") or g.key(g.name, "cleanlab_flags", None) not in done
    ):
        out.append((g.name, "cleanlab"))
    return out


def fit_filter(g: Group, method, objective, ratio, memory):
    """``InfluenceFilter`` fitted on the group's rows: (filter, seconds, note).

    The note names the RuntimeWarnings raised meanwhile (solver notes).
    """
    d = g.d
    flt = InfluenceFilter(
        make_model(g.kind, d["X_train"].shape[1], g.cfg),
        objective=objective,
        method=method,
        prune_ratio=ratio,
        batch_size=g.cfg["batch_size"],
        memory=memory,
        random_state=g.seed,
    )
    with warnings.catch_warnings(record=True) as caught, stopwatch() as sw:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", RuntimeWarning)
        flt.fit(
            as_input(g.kind, d["X_train"]),
            g.y,
            X_val=as_input(g.kind, d["X_val"]),
            y_val=d["y_val"],
            sensitive_features_val=d["s_val"],
        )
    msgs = {str(w.message).split(":")[0] for w in caught}
    return flt, sw["seconds"], "; ".join(sorted(msgs))


def evaluate(kind: str, est, d: dict, cfg: dict) -> dict:
    """Accuracy, DP gap, EO gap and FGSM robust accuracy on val and test rows.

    The FGSM rows are built against ``est`` itself (in its input space).
    """
    attack = Robustness(attack="fgsm", epsilon=cfg["epsilon"])
    tm = as_torch_model(est)
    out = {}
    for part in ("val", "test"):
        X, y, s = as_input(kind, d[f"X_{part}"]), d[f"y_{part}"], d[f"s_{part}"]
        pred = np.asarray(est.predict(X))
        out[f"{part}_acc"] = float(np.mean(pred == y))
        out[f"{part}_dp"] = demographic_parity_difference(y, pred, sensitive_features=s)
        out[f"{part}_eo"] = equal_opportunity_difference(y, pred, sensitive_features=s)
        X_adv = attack.perturb(tm, tm.prepare_X(X), tm.prepare_y(y)).numpy()
        pred_adv = np.asarray(est.predict(X_adv.astype(X.dtype)))
        out[f"{part}_rob"] = float(np.mean(pred_adv == y))
    return out


def result_row(g: Group, scenario, method, ratio, flt, score_s, fit_s, note=""):
    """One CSV row: what the filter removed and the refit's metrics."""
    removed = np.zeros(len(g.y), bool)
    removed[flt.removed_indices_] = True
    row = {
        "dataset": g.ds, "model": g.kind, "seed": g.seed, "scenario": scenario,
        "method": method, "ratio": ratio, "n_train": len(g.y),
        "n_removed": int(removed.sum()),
        "flipped_removed": int((removed & g.flipped).sum()),
        "score_s": score_s, "fit_s": fit_s, "note": note,
    }  # fmt: skip
    row.update(evaluate(g.kind, flt.estimator_, g.d, g.cfg))
    return row


def summary(row: dict, noisy: bool) -> str:
    text = (
        f"acc {row['test_acc']:.4f} dp {row['test_dp']:.3f} "
        f"eo {row['test_eo']:.3f} rob {row['test_rob']:.3f}"
    )
    if noisy:
        text += f" flip {row['flipped_removed']}/{row['n_removed']}"
    return text


# ------------------------------------------------------------------ run
class Sink:
    """Where result rows go: the CSV (appended at once) and the done set."""

    def __init__(self, path: Path, done: set):
        self.path, self.done, self.n = path, done, 0

    def __call__(self, row: dict) -> dict:
        append_csv(self.path, [row], CSV_COLUMNS)
        self.done.add(row_key(row))
        self.n += 1
        return row


def run_scored(g, scn, name, method, objective, score_s, memory, sink):
    """The rows of one method at every missing ratio; ``score_s`` its scoring."""
    parts = []
    note = ""
    for ratio in g.ratios:
        if g.key(scn, name, ratio) in sink.done:
            continue
        flt, fit_s, note_r = fit_filter(g, method, objective, ratio, memory)
        note = note or note_r
        row = sink(result_row(g, scn, name, ratio, flt, score_s, fit_s, note))
        parts.append(f"{ratio:g}: {summary(row, g.noisy)}")
    return parts


def run_influence(g, scn, name, memory, base_s, sink) -> list[str]:
    """An influence method or a baseline: fit and score once, then each ratio."""
    objective = "utility" if name in BASELINES else objective_of(scn, g.cfg)
    method = method_of(name, g.kind, g.cfg)
    # prune_ratio=0: the first fit and its scores, which memory caches
    _, first_s, note = fit_filter(g, method, objective, 0.0, memory)
    if note:
        log(f"  note {name}/{scn}: {note}")
    score_s = max(0.0, first_s - base_s)
    return run_scored(g, scn, name, method, objective, score_s, memory, sink)


def run_cleanlab(g, memory, sink) -> list[str]:
    """cleanlab's ranking at each ratio, and its own flagged rows."""
    with stopwatch() as sw:
        quality, flags = cleanlab_scores(g.kind, g.d["X_train"], g.y, g.seed, g.cfg)
    ranked = GivenScores(quality)
    parts = run_scored(
        g, g.name, "cleanlab", ranked, "utility", sw["seconds"], memory, sink
    )
    if g.key(g.name, "cleanlab_flags", None) not in sink.done:
        own = GivenScores(np.where(flags, -1.0, 1.0))
        flt, fit_s, _ = fit_filter(g, own, "utility", "negative", memory)
        row = sink(
            result_row(g, g.name, "cleanlab_flags", np.nan, flt, sw["seconds"], fit_s)
        )
        parts.append(f"own flags ({row['n_removed']} rows): {summary(row, True)}")
    return parts


def run_group(g: Group, sink: Sink) -> int:
    """Every missing row of the group; the number written."""
    pending = todo(g, sink.done)
    if not pending and g.key(g.name, "none", None) in sink.done:
        return 0
    n0, tag = sink.n, f"{g.ds}/{g.kind}/seed {g.seed}"
    location = tempfile.mkdtemp(prefix="bench-cleaning-")
    try:
        # no pruning: the first fit (its time is the base of the scoring times)
        base, base_s, _ = fit_filter(g, "random", "utility", 0.0, location)
        if g.key(g.name, "none", None) not in sink.done:
            row = sink(result_row(g, g.name, "none", np.nan, base, 0.0, base_s))
            log(f"  {tag}/{g.name}: none  {summary(row, False)}")
        for scn, name in pending:
            with stopwatch() as sw:
                if name == "cleanlab":
                    parts = run_cleanlab(g, location, sink)
                else:
                    parts = run_influence(g, scn, name, location, base_s, sink)
            log(f"  {tag}/{scn}: {name} ({sw['seconds']:.1f}s) | " + " | ".join(parts))
    finally:
        shutil.rmtree(location, ignore_errors=True)
    log(f"{tag}/{g.name} done (base fit {base_s:.1f}s, {sink.n - n0} rows)")
    return sink.n - n0


def group_complete(df, g: tuple, cfg: dict) -> bool:
    """Whether the CSV holds every row of group ``(ds, kind, seed, name)``."""
    ds, kind, seed, name = g
    sub = df[(df["dataset"] == ds) & (df["model"] == kind) & (df["seed"] == seed)]
    if name == "clean":
        need = 1 + len(cfg["ratios"]) * (
            len(BASELINES) + len(CLEAN_SCENARIOS) * len(methods_for(kind))
        )
        sub = sub[~sub["scenario"].isin(list(NOISE_GROUPS))]
    else:
        nr = len(cfg["ratios"]) + len(cfg["noise_extra_ratios"])
        need = 1 + (len(BASELINES) + len(methods_for(kind)) + 1) * nr + 1
        sub = sub[sub["scenario"] == name]
    return len(sub) >= need


# ------------------------------------------------------------------ main
def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="reduced smoke run")
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--datasets", nargs="+", choices=DATASETS)
    p.add_argument("--models", nargs="+", choices=MODELS)
    p.add_argument("--epsilon", type=float, default=0.1,
                   help="FGSM radius (objective and metric)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument(
        "--fresh", action="store_true", help="discard the CSV and start over"
    )
    p.add_argument("--render", action="store_true",
                   help="only rebuild the Markdown from the CSV")  # fmt: skip
    p.add_argument("--no-write", action="store_true", help="do not write the Markdown")
    p.add_argument("--out", default=None,
                   help="basename under benchmarks/results (default cleaning / cleaning_quick)")  # fmt: skip
    return p.parse_args(argv)


class Run:
    """The files of a run, its saved state, and the Markdown written from them."""

    def __init__(self, args, argv):
        self.args, self.cfg = args, make_config(args)
        base = args.out or ("cleaning_quick" if args.quick else "cleaning")
        self.csv, self.json, self.md = (
            RESULTS_DIR / f"{base}.{ext}" for ext in ("csv", "json", "md")
        )
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        if args.fresh:
            for path in (self.csv, self.json):
                path.unlink(missing_ok=True)
        self.state = {"compute_s": 0.0, "commit": None, "date": None}
        self.command = self._command(argv)
        self.groups = [
            (ds, kind, seed, g)
            for ds in self.cfg["datasets"]
            for kind in self.cfg["models"]
            for seed in self.cfg["seeds"]
            for g in ("clean", *self.cfg["noise_groups"])
        ]

    def _command(self, argv) -> str:
        words = argv if argv is not None else sys.argv[1:]
        extra = [a for a in words if a not in ("--quick", "--fresh", "--render")]
        quick = " --quick" if self.args.quick else ""
        return " ".join(["python benchmarks/bench_cleaning.py" + quick, *extra])

    def load_state(self) -> None:
        """Resume from the saved JSON (same configuration, or --render)."""
        if not self.json.exists():
            return
        saved = json.loads(self.json.read_text())
        if saved["config"] != self.cfg and not self.args.render:
            sys.exit(
                f"{self.json.name} holds a different configuration; rerun with --fresh "
                "to start over, or with the same options to resume.\n"
                f"saved: {saved['config']}\nnow:   {self.cfg}"
            )
        if self.args.render:
            self.cfg = saved["config"]
        for k in self.state:
            self.state[k] = saved.get(k, self.state[k])

    def save_state(self, commit: str | None = None) -> None:
        """Write the JSON; ``commit``: the package's commit at a (re)start."""
        if self.state["commit"] is None:
            self.state["commit"] = commit
        elif commit is not None and commit not in self.state["commit"]:
            self.state["commit"] += f", resumed at {commit}"
        self.state["date"] = self.state["date"] or datetime.date.today().isoformat()
        self.json.write_text(json.dumps({"config": self.cfg, **self.state}, indent=1))

    def write_md(self, df, complete: bool) -> str:
        n_done = sum(group_complete(df, g, self.cfg) for g in self.groups)
        header = run_header(
            "bench_cleaning.py",
            command=self.command,
            commit=self.state["commit"],
            date=self.state["date"],
        )
        meta = {
            "header": header,
            "compute_min": self.state["compute_s"] / 60,
            "csv": self.csv.name,
            "complete": complete and n_done == len(self.groups),
            "groups_done": n_done,
            "groups_total": len(self.groups),
        }
        text = render(df, self.cfg, meta)
        if not self.args.no_write:
            self.md.write_text(text)
        return text


def run_all(run: Run) -> None:
    """Every incomplete group, resuming from the CSV; the Markdown after each."""
    df = read_csv(run.csv, CSV_COLUMNS)
    sink = Sink(run.csv, {row_key(r) for r in df.to_dict("records")})
    log(f"config: {json.dumps(run.cfg)}")
    log(
        f"skinfluence at {run.state['commit']}; {len(sink.done)} rows in {run.csv.name}"
    )
    data, t_start = {}, time.perf_counter()
    for i, (ds, kind, seed, name) in enumerate(run.groups):
        if group_complete(df, (ds, kind, seed, name), run.cfg):
            continue
        log(f"group {i + 1}/{len(run.groups)}: {ds} / {kind} / seed {seed} / {name}")
        if (ds, seed) not in data:
            data = {(ds, seed): load_split(ds, seed, run.cfg)}
        with stopwatch() as sw:
            run_group(Group(ds, kind, seed, name, data[(ds, seed)], run.cfg), sink)
        run.state["compute_s"] += sw["seconds"]
        run.save_state()
        df = read_csv(run.csv, CSV_COLUMNS)
        run.write_md(df, complete=False)
        left = sum(not group_complete(df, g, run.cfg) for g in run.groups)
        log(
            f"progress: {len(run.groups) - left}/{len(run.groups)} groups; "
            f"{(time.perf_counter() - t_start) / 60:.1f} min this run"
        )


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    run = Run(args, argv)
    run.load_state()
    if not args.render:
        run.save_state(git_commit())
        with stopwatch() as sw:
            run_all(run)
        log(f"done in {sw['seconds'] / 60:.1f} min")
    text = run.write_md(read_csv(run.csv, CSV_COLUMNS), complete=True)
    if args.render or args.no_write:
        print(text)
    else:
        log(f"wrote {run.md}")


if __name__ == "__main__":
    main()
