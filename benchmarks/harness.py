"""What the benchmark scripts share: data, models, run facts, tables, CSV.

The scripts run as ``python benchmarks/<script>.py``, so this folder is first
on ``sys.path`` and they import this module as ``harness``. It calls the
public API of skinfluence only. Timing and memory measurement live in the
sibling ``measure.py``; they are imported from here too.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from measure import (  # noqa: F401  (the scripts import them from harness)
    CHILD_TAG,
    Quiet,
    Timing,
    child_result,
    fmt_share,
    hwm_mb,
    machine_busy_s,
    own_cpu_s,
    peak_beyond,
    reset_peak,
    rss_mb,
    run_child,
    stopwatch,
    sync,
    timed,
)
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"


# ------------------------------------------------------------------ run setup
def log(msg: str) -> None:
    """Print ``msg`` with the time of day, flushed."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def set_threads(n: int | None) -> int:
    """Pin torch's intra-op threads (``None``: torch's default); return the count."""
    if n is not None:
        torch.set_num_threads(max(1, min(int(n), os.cpu_count() or 1)))
    return torch.get_num_threads()


# ----------------------------------------------------------------------- data
def load_dataset(name: str, *, subset: str = "all", two_races: bool = False):
    """Adult or COMPAS from ``skinfluence.datasets``: ``(X, y, s)``.

    ``y`` int64; ``s`` the sensitive feature as strings (sex for Adult, race
    for COMPAS). ``two_races`` keeps COMPAS's African-American and Caucasian
    rows only; ``subset`` ("train", "test", "all") is Adult's.
    """
    from skinfluence.datasets import load_adult, load_compas

    if name == "adult":
        X, y, s = load_adult(subset=subset)
        return X, y.to_numpy().astype(np.int64), s["sex"].astype(str).to_numpy()
    X, y, s = load_compas()
    if two_races:
        keep = s["race"].isin(["African-American", "Caucasian"]).to_numpy()
        X, y = X.loc[keep].reset_index(drop=True), y.loc[keep].reset_index(drop=True)
        X["race"] = X["race"].cat.remove_unused_categories()
        s = X[["race"]]
    return X, y.to_numpy().astype(np.int64), s["race"].astype(str).to_numpy()


def sample_rows(n_total: int, n: int | None, seed: int) -> np.ndarray:
    """The first ``n`` rows of a seeded permutation of ``range(n_total)``."""
    return np.random.RandomState(seed).permutation(n_total)[:n]


def split_rows(strata, train_size, test_size, seed: int):
    """Stratified ``(train, test)`` indices of ``range(len(strata))``."""
    from sklearn.model_selection import train_test_split

    return train_test_split(
        np.arange(len(strata)),
        train_size=train_size,
        test_size=test_size,
        stratify=strata,
        random_state=seed,
    )


def _columns(X):
    cat = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    return [c for c in X.columns if c not in cat], cat


def preprocessor(X):
    """Numeric columns standardised, categorical ones one-hot (dense).

    The one-hot levels are the dtype's categories, not those seen in a fit,
    so every subsample (CV fold, seed) encodes to the same width.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num, cat = _columns(X)
    onehot = OneHotEncoder(
        categories=[list(X[c].cat.categories) for c in cat],
        handle_unknown="ignore",
        sparse_output=False,
    )
    return ColumnTransformer([("num", StandardScaler(), num), ("cat", onehot, cat)])


def encoded_width(X) -> int:
    """Number of columns :func:`preprocessor` makes of ``X``."""
    num, cat = _columns(X)
    return len(num) + sum(len(X[c].cat.categories) for c in cat)


def to_float32(X) -> np.ndarray:
    """Dense, C-contiguous float32 copy of ``X`` (a FunctionTransformer step)."""
    X = X.toarray() if hasattr(X, "toarray") else X
    return np.ascontiguousarray(X, dtype=np.float32)


def tabular_pipeline(X, final):
    """``Pipeline``: :func:`preprocessor` of the frame ``X``, float32, ``final``."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    return make_pipeline(preprocessor(X), FunctionTransformer(to_float32), final)


def encode(train, *others) -> list[np.ndarray]:
    """:func:`preprocessor` fitted on ``train``, applied to each frame: float32."""
    ct = preprocessor(train)
    return [to_float32(ct.fit_transform(train))] + [
        to_float32(ct.transform(X)) for X in others
    ]


# --------------------------------------------------------------------- models
class MLP(nn.Module):
    """``n_in -> hidden[0] -> ... -> n_out`` with ReLU between the layers."""

    def __init__(self, n_in: int = 1, hidden=(64,), n_out: int = 2):
        super().__init__()
        widths, layers = [n_in, *hidden], []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], n_out))

    def forward(self, X):
        return self.net(X)


def make_mlp(n_in: int, *, hidden=(64,), lr: float, momentum: float = 0.0,
             batch_size: int, epochs: int, checkpoints: bool = False,
             device: str = "cpu", net_class=None):  # fmt: skip
    """An unfitted skorch classifier of an :class:`MLP`, SGD, no validation split.

    ``checkpoints`` adds ``skinfluence.callbacks.TracInCheckpoints`` as the
    callback ``"tracin"``; ``net_class`` replaces ``NeuralNetClassifier``.
    """
    from skorch import NeuralNetClassifier

    from skinfluence.callbacks import TracInCheckpoints

    callbacks = [("tracin", TracInCheckpoints())] if checkpoints else None
    return (net_class or NeuralNetClassifier)(
        MLP, module__n_in=n_in, module__hidden=tuple(hidden),
        criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD,
        optimizer__momentum=momentum, lr=lr, batch_size=batch_size,
        max_epochs=epochs, train_split=None, iterator_train__shuffle=True,
        device=device, verbose=0, callbacks=callbacks,
    )  # fmt: skip


def make_logreg(C: float = 1.0):
    """The benchmarks' LogisticRegression (Newton solver, L2 penalty ``1/C``)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, solver="newton-cholesky", max_iter=1000)


def checkpoints_of(net) -> list:
    """The checkpoints recorded by the net's ``"tracin"`` callback."""
    return dict(net.callbacks_)["tracin"].checkpoints_


def cleanlab_ranking(model, X, y, folds: int, seed: int):
    """cleanlab on ``folds``-fold CV probabilities of ``model``: (quality, flags).

    ``quality``: ``get_label_quality_scores`` (self-confidence, low = suspect);
    ``flags``: the rows ``find_label_issues`` flags. Torch is seeded first.
    """
    import warnings

    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    torch.manual_seed(seed)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = cross_val_predict(model, X, y, cv=cv, method="predict_proba")
    quality = np.asarray(get_label_quality_scores(y, probs), np.float64)
    return quality, np.asarray(find_label_issues(y, probs), bool)


# ------------------------------------------------------------------ run facts
def git_commit() -> str:
    """The commit of the imported skinfluence, and whether it is edited.

    A ``git archive`` snapshot on ``PYTHONPATH`` is named by its ``COMMIT``
    file (see benchmarks/README.md).
    """
    import skinfluence

    def git(*args):
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD") or "unknown"
        dirty = git("status", "--porcelain", "--", "skinfluence")
    except OSError:
        return "unknown"
    where = Path(skinfluence.__file__).resolve().parent
    if where != (ROOT / "skinfluence").resolve():
        stamp = where.parent / "COMMIT"
        if stamp.exists():
            snap = stamp.read_text().strip()
            return f"{snap} (a snapshot of the package, on PYTHONPATH)"
        return f"{head} (package imported from {where})"
    return head + (" + uncommitted changes" if dirty else "")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # the platform's word below
    return platform.processor() or platform.machine()


def load_avg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def run_header(
    script: str,
    argv=None,
    *,
    command: str | None = None,
    commit: str | None = None,
    date: str | None = None,
) -> list[str]:
    """The Markdown bullets of a run's facts.

    Date, command (``python benchmarks/<script> <argv>`` unless ``command``
    is given), skinfluence's commit, machine and load, torch and its threads.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command = command or " ".join([f"python benchmarks/{script}", *args])
    date = date or datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return [
        f"- Date: {date}; command: `{command}`",
        f"- skinfluence at commit {commit or git_commit()}",
        f"- Machine: {platform.node()}; {cpu_name()}; {os.cpu_count()} CPUs; "
        f"{platform.system()} {platform.machine()}; load average (1/5/15 min) "
        f"at start: {load_avg()}",
        f"- torch {torch.__version__} ({torch.get_num_threads()} thread(s), "
        f"`torch.get_num_threads()`), Python {platform.python_version()}",
    ]


# --------------------------------------------------------------------- tables
def md_table(header: list[str], rows: list[list], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has one letter per column: l (default) or r."""
    seps = ["---:" if a == "r" else "---" for a in align.ljust(len(header), "l")]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(seps) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def mean_std(values, scale: float = 1.0, digits: int = 3) -> str:
    """``mean ± std`` (sample std) of the non-NaN values; "—" when none."""
    v = [x for x in values if not (isinstance(x, float) and math.isnan(x))]
    v = np.asarray(v, dtype=float)
    if len(v) == 0:
        return "—"
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{scale * v.mean():.{digits}f} ± {scale * sd:.{digits}f}"


def write_result(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    log(f"wrote {path}")


# ------------------------------------------------------------------ CSV resume
def read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """The rows written so far (an empty frame with ``columns`` if none)."""
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=columns)


def append_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Append ``rows`` to ``path`` (the header only when it is new)."""
    if rows:
        frame = pd.DataFrame(rows, columns=columns)
        frame.to_csv(path, mode="a", header=not path.exists(), index=False)


# -------------------------------------------------------------------- results
def write_csv(name: str, frame: pd.DataFrame, *, argv=None, script=None) -> Path:
    """``results/<name>.csv`` and ``results/<name>.run.json`` (the run's facts).

    The measurements go to the CSV; the facts of :func:`run_header` (date,
    command, commit, machine, torch threads) to the JSON beside it, which
    ``report.py`` puts at the top of ``results/<name>.md``.
    """
    import json

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.csv"
    frame.to_csv(path, index=False, float_format="%.6g")
    script = script or Path(sys.argv[0]).name
    facts = {"header": run_header(script, argv)}
    (RESULTS_DIR / f"{name}.run.json").write_text(json.dumps(facts, indent=1) + "\n")
    log(f"wrote {path}")
    return path
