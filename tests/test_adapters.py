"""Model families: one adapter each (skinfluence.models), and the bugs that
copies of their rules caused (issue "one source of truth")."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_iris, make_classification
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier

from skinfluence import InfluenceFilter, as_torch_model, compute_influence
from skinfluence.callbacks import TracInCheckpoints
from skinfluence.models import adapter_for, check_supported, is_fitted, with_checkpoints

DOCS = Path(__file__).resolve().parents[1] / "docs"


class CountingLR(LogisticRegression):
    """LogisticRegression that counts its fits (class-wide)."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        CountingLR.fits += 1
        return super().fit(X, y, sample_weight=sample_weight)


# ------------------------------------------------------------------- bug 1
def test_liblinear_on_three_classes_is_refused_before_any_training():
    X, y = load_iris(return_X_y=True)
    CountingLR.fits = 0
    est = CountingLR(solver="liblinear")
    with pytest.raises(ValueError, match="one-vs-rest only.*solver='lbfgs'"):
        InfluenceFilter(est, random_state=0).fit(X, y)
    assert CountingLR.fits == 0
    assert not hasattr(est, "coef_")


def test_multiclass_logistic_regression_probabilities_are_sklearns():
    # every multiclass LogisticRegression of scikit-learn >= 1.8 is softmax:
    # the adapter's probabilities are predict_proba's (independent: sklearn)
    X, y = load_iris(return_X_y=True)
    for solver in ("lbfgs", "newton-cg", "saga"):
        clf = LogisticRegression(solver=solver, max_iter=5000).fit(X, y)
        model = as_torch_model(clf)
        with torch.no_grad():
            p = model.log_proba(model.params, model.prepare_X(X)).exp().numpy()
        assert_allclose(p, clf.predict_proba(X), atol=1e-10)


# ------------------------------------------------------------------- bug 3
def test_random_state_makes_an_unseeded_sgd_filter_deterministic():
    X, y = make_classification(n_samples=300, random_state=1)
    sgd = SGDClassifier(loss="log_loss", max_iter=5, tol=None)
    fits = [
        InfluenceFilter(sgd, prune_ratio=0.1, random_state=0).fit(X, y)
        for _ in range(2)
    ]
    assert_array_equal(fits[0].influence_, fits[1].influence_)
    assert_array_equal(fits[0].removed_indices_, fits[1].removed_indices_)
    assert_array_equal(fits[0].estimator_.coef_, fits[1].estimator_.coef_)
    assert sgd.random_state is None  # the user's estimator is untouched
    # the refit is SGDClassifier with the seed drawn, on the kept rows
    seed = fits[0].estimator_.random_state
    assert isinstance(seed, int)
    mask = fits[0].sample_mask_
    ref = SGDClassifier(loss="log_loss", max_iter=5, tol=None, random_state=seed)
    ref.fit(X[mask], y[mask])
    assert_array_equal(fits[0].estimator_.coef_, ref.coef_)


def test_a_seed_the_user_set_is_kept():
    X, y = make_classification(n_samples=200, random_state=1)
    sgd = SGDClassifier(loss="log_loss", max_iter=5, tol=None, random_state=7)
    flt = InfluenceFilter(sgd, prune_ratio=0.1, random_state=0).fit(X, y)
    assert flt.estimator_.random_state == 7


# ---------------------------------------------------------- checkpoints
def _net(**kw):
    return NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)),
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        lr=0.1,
        train_split=None,
        verbose=0,
        **kw,
    )


@pytest.mark.parametrize(
    "make, disabled",
    [
        (lambda: _net(callbacks="disable"), True),
        (lambda: make_pipeline(StandardScaler(), _net()), False),
        (
            lambda: InfluenceFilter(
                make_pipeline(StandardScaler(), _net(callbacks="disable"))
            ),
            True,
        ),
    ],
    ids=["disabled-callbacks", "pipeline", "nested-filter"],
)
def test_with_checkpoints_records_one_checkpoint_per_epoch(make, disabled):
    est = make()
    prepared = with_checkpoints(est)
    info = check_supported(prepared)
    assert isinstance(info.final, NeuralNetClassifier)
    assert info.final is not check_supported(est).final  # a clone
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    prepared.fit(X, y)
    final = prepared
    while not isinstance(final, NeuralNetClassifier):
        final = final.estimator_ if hasattr(final, "estimator_") else final[-1]
    recorders = [cb for _, cb in final.callbacks_ if isinstance(cb, TracInCheckpoints)]
    assert len(recorders) == 1 and len(recorders[0].checkpoints_) == 3
    names = [name for name, _ in final.callbacks_]
    if disabled:  # skorch's default callbacks stay off, as "disable" asked
        assert names == ["tracin_checkpoints"]
    else:
        assert "train_loss" in names and "tracin_checkpoints" in names
    assert is_fitted(prepared) and not is_fitted(est)


def test_callbacks_module_imports_alone_without_a_cycle():
    for module in ("skinfluence.callbacks", "skinfluence.models"):
        out = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
    models_src = Path(__file__).resolve().parents[1] / "skinfluence" / "models"
    for path in models_src.glob("*.py"):
        assert "callbacks" not in re.findall(r"from \.\.(\w+)", path.read_text())


# ------------------------------------------------------ the extending page
def _doc_code(name):
    text = (DOCS / name).read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return ["\n".join(line[4:] for line in b.splitlines()) for b in blocks]


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_the_extending_page_adds_a_family_in_one_place():
    namespace = {}
    for code in _doc_code("extending.rst"):
        exec(compile(code, "extending.rst", "exec"), namespace)
    X, y = namespace["X"], namespace["y"]
    model = namespace["model"]
    assert type(adapter_for(model)).__name__ == "LogisticRegressionCVAdapter"
    # closed form of <grad J, grad l_i> for binary logistic regression
    w, b = model.coef_.ravel(), model.intercept_[0]

    def row_grads(Xr, yr):
        p = 1 / (1 + np.exp(-(Xr @ w + b)))
        return (p - yr)[:, None] * np.c_[Xr, np.ones(len(Xr))]

    v = row_grads(X[200:], y[200:]).mean(0)
    assert_allclose(namespace["scores"], row_grads(X[:200], y[:200]) @ v, rtol=1e-9)
    flt = namespace["flt"]
    assert len(flt.removed_indices_) == int(0.05 * 240)


def test_an_unsupported_estimator_names_the_registered_families():
    from sklearn.svm import SVC

    with pytest.raises(TypeError, match="SVC is not supported.*LogisticRegression"):
        compute_influence(SVC().fit([[0], [1]], [0, 1]), [[0]], [0], [[1]], [1])
