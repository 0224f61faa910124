"""
Cleaning Adult for demographic parity
=====================================

Fit a skorch MLP on the Adult census data, score every training row by its
influence on the demographic-parity gap (between women and men) of a held-out
validation split, drop the 5% most detrimental rows and refit. Accuracy and
gap are reported on a test split that takes no part in any choice.
"""

# %%
# Data: Adult as bundled with skinfluence (no download), split three ways.
import numpy as np
import torch
from sklearn.base import clone
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import compute_influence
from skinfluence.datasets import load_adult
from skinfluence.metrics import demographic_parity_difference

X, y, groups = load_adult()
sex = groups["sex"]
X_train, X_test, y_train, y_test, s_train, s_test = train_test_split(
    X, y, sex, test_size=0.3, stratify=y, random_state=0
)
X_train, X_val, y_train, y_val, s_train, s_val = train_test_split(
    X_train, y_train, s_train, test_size=0.2, stratify=y_train, random_state=0
)
print(f"train {len(X_train)}, validation {len(X_val)}, test {len(X_test)} rows")

# %%
# The model: one-hot + scaling, then a two-layer MLP on float32.


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
n_in = preprocess.fit(X_train).transform(X_train[:1]).shape[1]
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
model = make_pipeline(preprocess, to_float32, net)


def report(name, fitted):
    pred = fitted.predict(X_test)
    acc = np.mean(pred == y_test.to_numpy())
    gap = demographic_parity_difference(y_test, pred, sensitive_features=s_test)
    print(f"{name:>10}: test accuracy {acc:.4f}, demographic-parity gap {gap:.4f}")
    return acc, gap


# %%
# Fit, score by influence on the validation gap, prune 5%, refit.
torch.manual_seed(0)
before = clone(model).fit(X_train, y_train)
acc0, gap0 = report("before", before)

scores = compute_influence(
    before,
    X_train,
    y_train,
    X_val,
    y_val,
    objective="fairness",
    method="ip",
    sensitive_features_val=s_val,
)
keep = scores > np.quantile(scores, 0.05)
print(
    f"dropping {np.sum(~keep)} rows; their share of women: "
    f"{np.mean(s_train[~keep] == 'Female'):.2f} (all rows: {np.mean(s_train == 'Female'):.2f})"
)

torch.manual_seed(0)
after = clone(model).fit(X_train[keep], y_train[keep])
acc1, gap1 = report("after", after)
print(
    f"gap change {100 * (gap1 - gap0) / gap0:+.1f}%, accuracy change {100 * (acc1 - acc0):+.2f} points"
)

# %%
# The distribution of scores (needs matplotlib, the ``plot`` extra).
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(scores, bins=80, color="0.6")
    ax.axvline(np.quantile(scores, 0.05), color="C3", label="5% pruned below")
    ax.set_xlabel("influence on the demographic-parity gap (higher = helps)")
    ax.legend()
    fig.tight_layout()
