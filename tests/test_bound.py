"""Fairness(bound=b): rounds until the refit's validation gap is at most b.

References are computed by hand: logistic regressions refitted here on the
kept rows, the soft demographic-parity gap in numpy, the hard gap by
fairlearn, the round sizes from ``compute_influence``'s scores sorted and
summed here.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from skinfluence import (
    Fairness,
    InfluenceFilter,
    InfluenceFunction,
    InfluenceSampler,
    compute_influence,
)

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")

#: influence functions without damping to speak of: effect_i / n predicts the change
EXACT = InfluenceFunction(solver="exact", damping=1e-3)


def biased(n=600, seed=0, p=0.65, noise=1.0):
    """Labels from make_classification, groups drawn with P(m | y=1) = p, and a
    noisy copy of the group as a fifth feature (a proxy the model uses)."""
    X, y = make_classification(
        n_samples=n, n_features=4, n_informative=3, n_redundant=0, flip_y=0.05,
        random_state=seed,
    )  # fmt: skip
    rng = np.random.RandomState(seed + 1)
    s = (rng.rand(n) < np.where(y == 1, p, 1 - p)).astype(int)
    return np.c_[X, s + noise * rng.randn(n)], y, np.where(s == 1, "m", "f")


@pytest.fixture(scope="module")
def data():
    return biased()


def soft_dp(clf, X, s):
    """|mean P(y=1) over group m - over group f| (the objective, by hand)."""
    p = clf.predict_proba(X)[:, 1]
    return abs(p[s == "m"].mean() - p[s == "f"].mean())


def train_rows(flt, n):
    return np.setdiff1d(np.arange(n), flt.validation_indices_)


def fit_bound(X, y, s, bound, **kw):
    params = dict(method=EXACT, constraint=None, prune_ratio=0.2, random_state=0)
    flt = InfluenceFilter(
        LogisticRegression(), objective=Fairness(bound=bound), **{**params, **kw}
    )
    return flt.fit(X, y, sensitive_features=s)


# ------------------------------------------------------------ the scaling
def test_effect_over_n_predicts_a_removal_on_a_convex_case():
    """Removing row i changes J by about s_i / n (s: influence_function's score).

    Leave-one-out refits of a small LogisticRegression (tight tol): the
    prediction's slope against the refits is 1 within second-order terms.
    """
    X, y, s = biased(n=120, seed=3)
    Xt, yt, Xv, yv, sv = X[:80], y[:80], X[80:], y[80:], s[80:]
    lr = dict(tol=1e-10, max_iter=10_000)
    clf = LogisticRegression(**lr).fit(Xt, yt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small validation groups
        scores = compute_influence(
            clf, Xt, yt, Xv, yv, objective=Fairness(),
            method=InfluenceFunction(solver="exact", damping=0.0),
            sensitive_features_val=sv,
        )  # fmt: skip
    base = soft_dp(clf, Xv, sv)
    loo = np.array(
        [
            soft_dp(
                LogisticRegression(**lr).fit(np.delete(Xt, i, 0), np.delete(yt, i)),
                Xv,
                sv,
            )
            - base
            for i in range(len(Xt))
        ]
    )
    predicted = scores / len(Xt)
    slope = np.polyfit(predicted, loo, 1)[0]
    assert np.corrcoef(predicted, loo)[0, 1] > 0.99, np.corrcoef(predicted, loo)
    assert 0.9 < slope < 1.25, slope  # 1/(n-1) vs 1/n and curvature: a little above 1


# ------------------------------------------------------------- the bound
def test_bound_is_reached_on_validation_rows_checked_by_hand(data):
    X, y, s = data
    flt = fit_bound(X, y, s, 0.03)
    path = pd.DataFrame(flt.gap_path_)
    assert list(path.columns) == ["round", "rows_acted", "gap", "hard_gap", "accuracy"]
    assert len(path) >= 3  # the first refit missed the bound: another round
    assert_array_equal(path["round"], np.arange(len(path)))
    assert (path["gap"].iloc[:-1] > 0.03).all() and path["gap"].iloc[-1] <= 0.03
    assert path["rows_acted"].is_monotonic_increasing
    # a round acts on at most its share of the cap, ceil(96 / 10) rows
    assert np.diff(path["rows_acted"]).max() == 10
    # by hand: refit on the kept training rows, measure on the validation rows
    val = flt.validation_indices_
    kept = np.setdiff1d(train_rows(flt, len(X)), flt.removed_indices_)
    assert len(flt.removed_indices_) == path["rows_acted"].iloc[-1]
    refit = LogisticRegression().fit(X[kept], y[kept])
    assert soft_dp(refit, X[val], s[val]) <= 0.03
    assert_allclose(path["gap"].iloc[-1], soft_dp(refit, X[val], s[val]), rtol=1e-6)
    pred = refit.predict(X[val])
    hard = fairlearn_metrics.demographic_parity_difference(
        y[val], pred, sensitive_features=s[val]
    )
    assert path["hard_gap"].iloc[-1] == pytest.approx(hard, abs=1e-12)
    assert path["accuracy"].iloc[-1] == pytest.approx(np.mean(pred == y[val]))
    # the final model is that refit (the last measured fit, not a new one)
    assert_allclose(flt.predict_proba(X), refit.predict_proba(X), rtol=1e-10)
    # the first record is the first fit on every training row
    first = LogisticRegression().fit(
        X[train_rows(flt, len(X))], y[train_rows(flt, len(X))]
    )
    assert_allclose(path["gap"].iloc[0], soft_dp(first, X[val], s[val]), rtol=1e-6)
    assert flt.rounds_ == 10  # "auto" with a bound


def test_first_round_size_follows_the_predicted_change(data):
    """k = the fewest lowest scores whose sum / n reaches -(J - bound)."""
    X, y, s = data
    bound = 0.1
    flt = fit_bound(X, y, s, bound)
    train, val = train_rows(flt, len(X)), flt.validation_indices_
    first = LogisticRegression().fit(X[train], y[train])
    scores = compute_influence(
        first, X[train], y[train], X[val], y[val], objective=Fairness(),
        method=EXACT, sensitive_features_val=s[val],
    )  # fmt: skip
    n, J = len(train), soft_dp(first, X[val], s[val])
    order = np.argsort(scores, kind="stable")
    total, k = 0.0, 0
    while total / n > -(J - bound):
        total += scores[order[k]]
        k += 1
    assert total / n > -J  # the plan does not pass a zero gap
    assert 0 < k < math.floor(0.2 * n)  # sized by the bound, not the cap
    assert flt.gap_path_[1]["rows_acted"] == k
    assert_array_equal(flt.removed_indices_, np.sort(train[order[:k]]))
    assert flt.gap_path_[-1]["gap"] <= bound


def test_cap_stops_above_the_bound_with_a_warning(data):
    X, y, s = data
    with pytest.warns(UserWarning, match="above the bound 0.03") as record:
        flt = fit_bound(X, y, s, 0.03, prune_ratio=0.05)
    cap = math.floor(0.05 * len(train_rows(flt, len(X))))
    last = flt.gap_path_[-1]
    assert last["rows_acted"] == cap == len(flt.removed_indices_)
    assert last["gap"] > 0.03
    message = next(str(w.message) for w in record if "bound" in str(w.message))
    assert f"caps the rows acted on at {cap}" in message
    assert f"{last['gap']:.4g}" in message and f"{cap} of the {cap} rows" in message


def test_no_bound_is_the_current_behaviour(data):
    """Fairness() as before: by hand for one round, and the default schedule
    (3 rounds under the utility constraint) recorded before the bound existed."""
    X, y, s = data
    flt = InfluenceFilter(
        LogisticRegression(), objective=Fairness(), prune_ratio=0.1, rounds=1,
        constraint=None, random_state=0,
    ).fit(X, y, sensitive_features=s)  # fmt: skip
    assert flt.gap_path_ is None and flt.rounds_ == 1
    train, val = train_rows(flt, len(X)), flt.validation_indices_
    first = LogisticRegression().fit(X[train], y[train])
    scores = compute_influence(
        first, X[train], y[train], X[val], y[val], objective=Fairness(),
        sensitive_features_val=s[val],
    )  # fmt: skip
    k = math.floor(0.1 * len(train))
    lowest = np.sort(np.argsort(scores, kind="stable")[:k])
    assert_array_equal(flt.removed_indices_, train[lowest])
    # the defaults, against the rows they removed before the bound existed
    # (recorded at commit 0c4f4ff)
    Xg, yg, sg = biased(p=0.7, noise=0.3)
    dflt = InfluenceFilter(
        LogisticRegression(), objective=Fairness(), prune_ratio=0.1, random_state=0
    ).fit(Xg, yg, sensitive_features=sg)
    assert dflt.rounds_ == 3 and dflt.gap_path_ is None
    assert_array_equal(dflt.removed_indices_, RECORDED)


RECORDED = [
    6, 8, 15, 42, 44, 59, 62, 64, 77, 93, 98, 110, 122, 141, 169, 201, 204, 216,
    223, 243, 245, 254, 265, 290, 292, 308, 312, 315, 318, 320, 329, 335, 347, 389,
    391, 431, 435, 439, 441, 463, 475, 488, 513, 540, 549, 561, 570, 574,
]  # fmt: skip


@pytest.mark.parametrize(
    "bound", [0, 1, -0.1, 1.5, float("nan"), "0.1", True], ids=repr
)
def test_bound_outside_0_1_raises_before_training(data, bound):
    X, y, s = data
    fits = []

    class Counting(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            fits.append(1)
            return super().fit(X, y, sample_weight=sample_weight)

    flt = InfluenceFilter(Counting(), objective=Fairness(bound=bound))
    with pytest.raises(ValueError, match="bound must be None or a number in"):
        flt.fit(X, y, sensitive_features=s)
    assert not fits


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(method="random"), "measures none"),
        (dict(prune_ratio="negative"), "not 'negative'"),
    ],
)
def test_bound_needs_a_predicting_method_and_a_cap(data, params, match):
    X, y, s = data
    flt = InfluenceFilter(
        LogisticRegression(), objective=Fairness(bound=0.05), **params
    )
    with pytest.raises(ValueError, match=match):
        flt.fit(X, y, sensitive_features=s)


def test_grid_search_over_the_bound(data):
    X, y, s = data
    base = InfluenceFilter(
        LogisticRegression(), objective="fairness", method=EXACT, constraint=None,
        prune_ratio=0.2, random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # cap warnings on some folds
        search = GridSearchCV(base, {"objective__bound": [0.03, 0.1]}, cv=2)
        search.fit(X, y, sensitive_features=s)
    assert search.cv_results_["param_objective__bound"].tolist() == [0.03, 0.1]
    best = search.best_params_["objective__bound"]
    alone = fit_bound(X, y, s, best)
    assert search.best_estimator_.objective_.bound == best
    assert_array_equal(search.best_estimator_.removed_indices_, alone.removed_indices_)


def test_sampler_returns_the_rows_of_the_bounded_filter(data):
    X, y, s = data
    flt = fit_bound(X, y, s, 0.03)
    sampler = InfluenceSampler(
        LogisticRegression(), objective=Fairness(bound=0.03), method=EXACT,
        constraint=None, prune_ratio=0.2, random_state=0,
    )  # fmt: skip
    X_res, _ = sampler.fit_resample(X, y, sensitive_features=s)
    assert_array_equal(sampler.sample_indices_, np.flatnonzero(flt.sample_mask_))
    assert sampler.gap_path_ == flt.gap_path_
