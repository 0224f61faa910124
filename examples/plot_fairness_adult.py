"""
Cleaning Adult for demographic parity
=====================================

A skorch MLP in a scikit-learn Pipeline predicts whether a person earns more
than $50K a year from the Adult census data. Its predictions favour men: the
share of women predicted to earn more is far below the share of men (the
demographic-parity gap).

:class:`~skinfluence.InfluenceFilter` wraps the net: it holds out a validation
split, fits the net on the rest, scores every training row by its influence
on the validation demographic-parity gap, drops at most 5% of the rows and
refits. Under a fairness objective the defaults are the configuration that
``benchmarks/bench_fairness.py`` found best for fairness: the rows are
removed in three rounds (refit and re-score between them), and the rows each
round removes are, together, not predicted to raise the validation loss
(``constraint="utility"``). Accuracy and gap are measured on a test split
that takes no part in any choice.
"""

# %%
# Data
# ----
# Adult as bundled with skinfluence (no download): 45,222 rows, 30% of them
# kept aside as the test split. ``SKINFLUENCE_EXAMPLE_QUICK=1`` runs on a
# subsample (as the documentation build and the tests do).
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from sklearn.base import clone
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import InfluenceFilter
from skinfluence.datasets import load_adult
from skinfluence.metrics import demographic_parity_difference

QUICK = os.environ.get("SKINFLUENCE_EXAMPLE_QUICK") == "1"
# One torch thread: how torch splits a sum between threads can change its
# last bits, and so the printed numbers, with the number of threads; pinned,
# they repeat from run to run (a small MLP gains nothing from more threads).
torch.set_num_threads(1)
print(f"torch threads: {torch.get_num_threads()}")

X, y, groups = load_adult()
sex = groups["sex"]
if QUICK:
    X, _, y, _, sex, _ = train_test_split(
        X, y, sex, train_size=5000, stratify=y, random_state=0
    )
X_train, X_test, y_train, y_test, s_train, s_test = train_test_split(
    X, y, sex, test_size=0.3, stratify=y, random_state=0
)

# %%
# The model
# ---------
# One-hot encoding and scaling, then a two-layer MLP. The filter takes the
# place of the net at the end of the Pipeline: influence is computed in the
# net's input space, after the preprocessing.


class MLP(nn.Module):
    def __init__(self, n_in=104, hidden=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, X):
        return self.net(X)


preprocess = make_column_transformer(
    (
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        make_column_selector(dtype_include="category"),
    ),
    (StandardScaler(), make_column_selector(dtype_include="number")),
)
n_in = clone(preprocess).fit(X_train).transform(X_train[:1]).shape[1]
net = NeuralNetClassifier(
    MLP,
    module__n_in=n_in,
    criterion=nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=1e-3,
    max_epochs=8,
    batch_size=256,
    train_split=None,
    verbose=0,
)
# skorch wants float32 features: cast after the column transformer
to_float32 = FunctionTransformer(np.asarray, kw_args={"dtype": np.float32})

cache = tempfile.mkdtemp()  # the first fit and its scores, shared by both runs
model = make_pipeline(
    preprocess,
    to_float32,
    InfluenceFilter(
        net,
        objective="fairness",  # the demographic-parity gap, by default
        method="ip",
        prune_ratio=0.05,
        # the defaults constraint="auto" and rounds="auto" become "utility"
        # and 3 under a fairness objective
        memory=cache,
        random_state=0,
    ),
)


def report(name, fitted):
    pred = fitted.predict(X_test)
    acc = np.mean(pred == y_test.to_numpy())
    gap = demographic_parity_difference(y_test, pred, sensitive_features=s_test)
    print(f"{name:>10}: test accuracy {acc:.4f}, demographic-parity gap {gap:.4f}")
    return acc, gap


# %%
# Before and after
# ----------------
# The baseline is the same Pipeline with ``prune_ratio=0``: the same
# validation split and the same torch seed, so the two nets differ only by
# the rows removed. ``sensitive_features`` reaches the filter through the
# Pipeline's ``<step>__<param>`` prefix (or through metadata routing, see
# :ref:`sphx_glr_auto_examples_plot_prune_ratio_search.py`); prediction does
# not need it.
fit_params = {"influencefilter__sensitive_features": s_train}
before = clone(model).set_params(influencefilter__prune_ratio=0)
before.fit(X_train, y_train, **fit_params)
flt = before[-1]
n_val = len(flt.validation_indices_)
print(f"train {len(X_train) - n_val}, validation {n_val}, test {len(X_test)} rows")
acc0, gap0 = report("before", before)

after = model.fit(X_train, y_train, **fit_params)
flt = after[-1]
dropped = s_train.to_numpy()[flt.removed_indices_]
print(
    f"dropping {len(dropped)} rows; their share of women: "
    f"{np.mean(dropped == 'Female'):.2f} (all rows: {np.mean(s_train == 'Female'):.2f})"
)
acc1, gap1 = report("after", after)
print(
    f"gap change {100 * (gap1 - gap0) / gap0:+.1f}%, "
    f"accuracy change {100 * (acc1 - acc0):+.2f} points"
)
shutil.rmtree(cache)

# %%
# The scores
# ----------
# ``influence_`` holds one score per training row (NaN for the validation
# rows): the score of the round that last scored it. A removed row keeps the
# score that removed it, computed on the model of its round; a kept row shows
# the last round's score. Most rows barely move the gap, and the removed rows
# (hatched) are mostly men's rows (the share of women printed above). They
# are *not* the left tail: under the utility constraint each round solves a
# linear program that removes low scores only as far as the validation loss
# is predicted not to rise. It can pass over some of the lowest scores (rows
# whose removal would raise the loss) and remove rows that score above zero
# (rows whose removal lowers the loss, which pays for the others); the line
# printed below counts both. With ``constraint=None, rounds=1`` the
# removed rows would be exactly the lowest scores. Raising ``prune_ratio``
# trades accuracy for a smaller gap: see
# :ref:`sphx_glr_auto_examples_plot_prune_ratio_search.py`. The plot needs
# matplotlib (``pip install "skinfluence[plot]"``). Run as a script
# (``python examples/plot_fairness_adult.py``), the example saves it to
# ``influence_histogram.png`` in the current directory and prints the path;
# ``SKINFLUENCE_EXAMPLE_FIGURE`` names another file (empty: save nothing). The
# documentation's gallery shows the figure instead of saving it.
from skinfluence.plotting import plot_influence  # noqa: E402

scores, removed = flt.influence_, flt.removed_indices_
lowest = np.argsort(scores)[: len(removed)]  # NaN (validation rows) sorts last
print(
    f"of the {len(removed)} removed rows, {np.isin(removed, lowest).sum()} are "
    f"among the {len(removed)} lowest scores and {np.sum(scores[removed] > 0)} "
    "score above zero"
)

try:
    ax = plot_influence(flt, groups=s_train, bins=60, log=True)
except ImportError as exc:  # matplotlib is the optional "plot" extra
    print(exc)
else:
    ax.set_title("Influence on the validation demographic-parity gap")
    ax.figure.tight_layout()
    path = os.environ.get("SKINFLUENCE_EXAMPLE_FIGURE", "influence_histogram.png")
    if path and "sphinx_gallery" not in sys.modules:
        ax.figure.savefig(path, dpi=100)
        print(f"histogram of the scores saved to {os.path.abspath(path)}")
