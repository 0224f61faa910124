"""
Pruning for adversarial robustness
==================================

The ``robustness`` objective is the loss on adversarial copies of the
validation rows: each is moved by FGSM, one signed-gradient step of size
``epsilon`` in every feature (here the standardised and one-hot encoded
features the net sees). Training rows whose gradient raises that loss are
the ones that make the decision boundary easy to cross; dropping them and
refitting should make the refitted net harder to attack.

Robust accuracy is measured the only honest way: by attacking each refitted
net anew on the test rows, not by reusing adversarial rows built against the
first net.
"""

# %%
# Data and model
# --------------
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import InfluenceFilter, Robustness, as_torch_model
from skinfluence.datasets import load_adult
from skinfluence.plotting import plot_pruning_curve

QUICK = os.environ.get("SKINFLUENCE_EXAMPLE_QUICK") == "1"
torch.set_num_threads(1)  # a small MLP: more threads only wait for each other
EPSILON = 0.1

X, y, _ = load_adult()
X, _, y, _ = train_test_split(
    X, y, train_size=3000 if QUICK else 8000, stratify=y, random_state=0
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
preprocess = make_column_transformer(
    (
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        make_column_selector(dtype_include="category"),
    ),
    (StandardScaler(), make_column_selector(dtype_include="number")),
).fit(X_train)
Z_train, Z_test = (
    preprocess.transform(p).astype(np.float32) for p in (X_train, X_test)
)


class MLP(nn.Module):
    def __init__(self, n_in=104, hidden=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, 2)
        )

    def forward(self, X):
        return self.net(X)


net = NeuralNetClassifier(
    MLP,
    module__n_in=Z_train.shape[1],
    criterion=nn.CrossEntropyLoss,
    optimizer=torch.optim.SGD,
    optimizer__momentum=0.9,
    lr=0.05,
    max_epochs=20,
    batch_size=64,
    train_split=None,
    verbose=0,
)

# %%
# Attacking a fitted filter
# -------------------------
# :func:`~skinfluence.models.as_torch_model` views the refitted net as a function of
# its parameters, and :meth:`Robustness.perturb
# <skinfluence.Robustness.perturb>` builds the same FGSM copies the objective
# uses, here against that net.


def accuracies(flt):
    model = as_torch_model(flt.estimator_)
    X_t, y_t = model.prepare_X(Z_test), model.prepare_y(y_test.to_numpy())
    X_adv = Robustness(attack="fgsm", epsilon=EPSILON).perturb(model, X_t, y_t)
    clean = np.mean(flt.predict(Z_test) == y_test.to_numpy())
    robust = np.mean(flt.predict(X_adv.numpy()) == y_test.to_numpy())
    return clean, robust


# %%
# Prune, refit, attack
# --------------------
# Influence on the adversarial validation loss (``ip``) against random
# pruning, for several ``prune_ratio`` and seeds (each seed draws another
# validation split and another initialisation; ``prune_ratio=0`` is the
# unpruned net).
runs = []
for seed in [0] if QUICK else [0, 1]:
    for method in ["ip", "random"]:
        for prune_ratio in [0.0, 0.05, 0.1, 0.2]:
            flt = InfluenceFilter(
                net,
                objective=Robustness(attack="fgsm", epsilon=EPSILON),
                method=method,
                prune_ratio=prune_ratio,
                random_state=seed,
            ).fit(Z_train, y_train.to_numpy())
            clean, robust = accuracies(flt)
            runs.append(
                dict(
                    method=method,
                    prune_ratio=prune_ratio,
                    seed=seed,
                    accuracy=clean,
                    robust_accuracy=robust,
                )
            )
runs = pd.DataFrame(runs)
print(
    runs.groupby(["method", "prune_ratio"])[["accuracy", "robust_accuracy"]]
    .mean()
    .round(4)
    .to_string()
)

# %%
# :func:`~skinfluence.plotting.plot_pruning_curve` takes such a table of runs
# too, and averages over the seeds. Pruning by influence on the adversarial
# loss raises the robust accuracy of the refitted net as the ratio grows, at
# a cost in clean accuracy that grows too (the table above); random pruning
# does not raise it. One run on a subsample is noisy, small ratios most:
# the cleaning benchmark (``benchmarks/results/cleaning.md``) averages over
# seeds.
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
plot_pruning_curve(runs, metrics="robust_accuracy", by="method", ax=axes[0])
plot_pruning_curve(runs, metrics="accuracy", by="method", ax=axes[1])
axes[0].set_title(f"FGSM, epsilon={EPSILON}")
fig.tight_layout()
plt.show()
