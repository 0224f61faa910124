"""What a new user meets first (issue "the first hour"): clear errors before
training, warnings that say the numbers, float64 Pipelines into float32 nets."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from skorch import NeuralNetClassifier

from skinfluence import InfluenceFilter
from skinfluence.objectives import Fairness


def test_a_grid_over_a_string_objectives_metric_searches_fairness_instances():
    X, y = make_classification(n_samples=240, random_state=0)
    s = np.random.default_rng(0).integers(0, 2, size=len(y))
    flt = InfluenceFilter(LogisticRegression(), objective="fairness", random_state=0)
    grid = GridSearchCV(
        flt, {"objective__metric": ["demographic_parity", "equal_opportunity"]}, cv=2
    )
    grid.fit(X, y, sensitive_features=s)
    assert flt.objective == "fairness"  # the user's filter keeps its string
    best = grid.best_estimator_
    metric = best.objective.metric
    by_hand = InfluenceFilter(
        LogisticRegression(), objective=Fairness(metric=metric), random_state=0
    ).fit(X, y, sensitive_features=s)
    assert_array_equal(best.removed_indices_, by_hand.removed_indices_)


def _fit_warnings(flt, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flt.fit(X, y)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_a_prune_ratio_that_reshapes_the_classes_warns_with_the_numbers():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:400], y[:400]
    flt = InfluenceFilter(
        make_pipeline(StandardScaler(), LogisticRegression()), prune_ratio=0.9,
        random_state=0,
    )
    messages = [m for m in _fit_warnings(flt, X, y) if "prune_ratio=0.9" in m]
    assert len(messages) == 1
    kept = np.bincount(y[flt.sample_mask_], minlength=2).tolist()
    train = np.setdiff1d(np.arange(len(y)), flt.validation_indices_)
    before = np.bincount(y[train], minlength=2).tolist()
    assert f"leaves {sum(kept)} of {sum(before)} training rows" in messages[0]
    assert f"counted {kept} (before: {before})" in messages[0]
    # a small prune_ratio says nothing
    quiet = InfluenceFilter(
        make_pipeline(StandardScaler(), LogisticRegression()), prune_ratio=0.05,
        random_state=0,
    )
    assert not [m for m in _fit_warnings(quiet, X, y) if "prune_ratio" in m]


def test_negative_pruning_of_many_rows_warns_with_the_share():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:400], y[:400]
    flt = InfluenceFilter(
        make_pipeline(StandardScaler(), LogisticRegression()),
        prune_ratio="negative", random_state=0,
    )
    messages = [m for m in _fit_warnings(flt, X, y) if "'negative'" in m]
    n_train = len(y) - len(flt.validation_indices_)
    removed = len(flt.removed_indices_)
    assert removed / n_train > 0.1
    assert f"({removed} of {n_train})" in messages[0]
    assert f"{removed / n_train:.0%}" in messages[0]


class CountingSGD(SGDClassifier):
    fits = 0

    def fit(self, X, y, **kw):
        CountingSGD.fits += 1
        return super().fit(X, y, **kw)


@pytest.mark.parametrize(
    "est",
    [
        LogisticRegression(l1_ratio=1.0, solver="saga"),
        CountingSGD(loss="log_loss", penalty="elasticnet"),
    ],
)
def test_influence_functions_refuse_l1_penalties_before_training(est):
    X, y = make_classification(n_samples=100, random_state=0)
    CountingSGD.fits = 0
    with pytest.raises(ValueError, match="L1 part.*method='ip'"):
        InfluenceFilter(est, method="influence_function").fit(X, y)
    assert CountingSGD.fits == 0 and not hasattr(est, "coef_")


def test_float64_pipelines_feed_a_float32_net():
    X, y = make_classification(n_samples=160, n_features=5, random_state=0)
    X_val, y_val = X[120:], y[120:]
    X, y = X[:120], y[:120]

    def net():
        # the weights are drawn here, once: skorch trains the module instance
        # it is given, without shuffling, so no seed set later changes the fit
        torch.manual_seed(0)
        return NeuralNetClassifier(
            torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)),
            max_epochs=3, lr=0.1, train_split=None, verbose=0, iterator_train__shuffle=False,
        )

    flt = InfluenceFilter(make_pipeline(StandardScaler(), net()), prune_ratio=0.0,
                          random_state=0)
    flt.fit(X, y, X_val=X_val, y_val=y_val)
    # by hand: the same net behind an explicit float32 cast, under another
    # global seed (the filter's seeding must not be what makes them agree)
    to32 = FunctionTransformer(lambda a: np.asarray(a, dtype=np.float32))
    by_hand = make_pipeline(StandardScaler(), to32, net())
    torch.manual_seed(12345)
    by_hand.fit(X, y)
    proba = by_hand.predict_proba(X_val)
    assert proba.dtype == np.float32 and np.ptp(proba[:, 1]) > 0.05  # a trained net
    assert_allclose(flt.predict_proba(X_val), proba, rtol=1e-6)


def test_raw_validation_rows_in_a_pipeline_get_a_message_saying_what_to_pass():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=100), "c": rng.choice(["x", "y"], 100)})
    y = rng.integers(0, 2, 100)
    pre = make_column_transformer((OneHotEncoder(), ["c"]), remainder="passthrough")
    pipe = make_pipeline(pre, InfluenceFilter(LogisticRegression()))
    with pytest.raises(ValueError, match=re.escape("pipe[:-1].transform(X_val)")):
        pipe.fit(
            df[:80], y[:80],
            influencefilter__X_val=df[80:], influencefilter__y_val=y[80:],
        )


def test_verbose_fit_counts_every_epoch_round_and_the_refit_in_one_display(capsys):
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    X = X.astype(np.float32)
    net = NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)),
        max_epochs=3, train_split=None, verbose=0,
    )
    InfluenceFilter(net, rounds=2, verbose=1, random_state=0).fit(X, y)
    lines = capsys.readouterr().err.splitlines()
    # 2 rounds x (3 epochs + 1 scoring pass) + 3 refit epochs, one line each
    expected = [
        f"InfluenceFilter: {i}/11, {stage}"
        for i, stage in enumerate(
            [f"round 1 of 2: fit, epoch {e} of 3" for e in (1, 2, 3)]
            + ["round 1 of 2: scored"]
            + [f"round 2 of 2: fit, epoch {e} of 3" for e in (1, 2, 3)]
            + ["round 2 of 2: scored"]
            + [f"refit, epoch {e} of 3" for e in (1, 2, 3)],
            start=1,
        )
    ]
    assert lines == expected  # a log file: no blank line, no nested bar
    assert net.callbacks is None  # the user's net is untouched


def test_a_wrong_number_of_features_names_n_features_in():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 10))
    y = (X[:, 0] > 0).astype(int)
    clf = LogisticRegression().fit(X[:, :5], y)
    from skinfluence import compute_influence

    with pytest.raises(ValueError, match=r"X has 10 features.*n_features_in_=5"):
        compute_influence(clf, X, y, X[:10, :5], y[:10])
    with pytest.raises(ValueError, match=r"X has 10 features.*n_features_in_=5"):
        compute_influence(clf, X[:, :5], y, X[:10], y[:10])  # the validation rows
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[:, :5], y)
    with pytest.raises(ValueError, match=r"Pipeline\(LogisticRegression\).*=5"):
        compute_influence(pipe, X, y, X[:10, :5], y[:10])


def test_lissa_on_a_small_model_points_to_the_exact_solver():
    from skinfluence import InfluenceFunction, compute_influence

    X, y = make_classification(n_samples=400, n_features=6, random_state=0)
    clf = LogisticRegression().fit(X, y)
    lissa = InfluenceFunction(solver="lissa", max_iter=3)
    with pytest.warns(UserWarning, match=r"depth=3 curvature products over 400 rows.*7 parameters.*'exact'"):
        compute_influence(clf, X, y, X[:50], y[:50], method=lissa)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        compute_influence(clf, X, y, X[:50], y[:50], method=InfluenceFunction(solver="exact"))


def test_compute_influence_refuses_influence_functions_on_a_fitted_l1_model():
    from skinfluence import compute_influence

    X, y = make_classification(n_samples=100, random_state=0)
    clf = LogisticRegression(l1_ratio=1.0, solver="saga", max_iter=2000).fit(X, y)
    with pytest.raises(ValueError, match="L1 part"):
        compute_influence(clf, X, y, X[:20], y[:20], method="influence_function")
    # the inner products need no curvature
    assert compute_influence(clf, X, y, X[:20], y[:20], method="ip").shape == (100,)
