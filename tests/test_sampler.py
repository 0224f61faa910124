"""InfluenceSampler: returned rows against closed-form scores and hand fits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _tiny_nets import one_torch_thread  # noqa: F401
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from test_filter import CountingLR, lowest, lr_dp_ip, lr_ip

from skinfluence import InfluenceFilter, InfluenceSampler


@pytest.fixture
def data():
    X, y = make_classification(
        n_samples=300, n_features=5, n_informative=3, flip_y=0.1, random_state=0
    )
    s = np.where(np.random.RandomState(1).rand(300) < 0.4, "a", "b")
    return X, y, s


@pytest.fixture(autouse=True)
def _reset_counter():
    CountingLR.n_fits = 0


def test_returns_all_rows_but_the_lowest_scores(data):
    X, y, _ = data
    sampler = InfluenceSampler(
        LogisticRegression(), prune_ratio=0.1, refit_on="all", random_state=0
    )
    X_res, y_res = sampler.fit_resample(X, y)
    val = sampler.validation_indices_
    train = np.setdiff1d(np.arange(300), val)
    first = LogisticRegression().fit(X[train], y[train])
    ref = lr_ip(first, X[train], y[train], X[val], y[val])
    assert_allclose(sampler.influence_[train], ref, rtol=1e-7, atol=1e-12)
    removed = train[lowest(ref, math.floor(0.1 * len(train)))]
    assert_array_equal(sampler.removed_indices_, removed)
    kept = np.setdiff1d(np.arange(300), removed)
    assert_array_equal(sampler.sample_indices_, kept)
    assert_array_equal(X_res, X[kept])
    assert_array_equal(y_res, y[kept])
    assert_allclose(sampler.estimator_.coef_, first.coef_, rtol=1e-12)
    # the filter with the same parameters drops the same rows and refits on
    # the rows the sampler returns
    flt = InfluenceFilter(
        LogisticRegression(), prune_ratio=0.1, refit_on="all", random_state=0
    ).fit(X, y)
    assert_array_equal(flt.removed_indices_, removed)
    assert_array_equal(np.flatnonzero(flt.sample_mask_), sampler.sample_indices_)


def test_refit_on_train_returns_kept_training_rows(data):
    X, y, _ = data
    sampler = InfluenceSampler(
        LogisticRegression(), prune_ratio=0.1, refit_on="train", random_state=0
    )
    X_res, _ = sampler.fit_resample(X, y)
    expected = np.setdiff1d(
        np.arange(300), np.r_[sampler.validation_indices_, sampler.removed_indices_]
    )
    assert_array_equal(sampler.sample_indices_, expected)
    assert_array_equal(X_res, X[expected])


def test_dataframe_in_dataframe_out(data):
    X, y, s = data
    df = pd.DataFrame(X, columns=list("abcde"), index=np.arange(300) + 1000)
    ys = pd.Series(y, index=df.index, name="target")
    sampler = InfluenceSampler(
        LogisticRegression(), objective="fairness", constraint=None, rounds=1,
        random_state=0,
    )
    X_res, y_res = sampler.fit_resample(df, ys, sensitive_features=s)
    assert isinstance(X_res, pd.DataFrame) and isinstance(y_res, pd.Series)
    # imbalanced-learn's template rebuilds the frame (a fresh index, as its own
    # samplers return); sample_indices_ maps the rows back
    assert_array_equal(X_res.to_numpy(), df.to_numpy()[sampler.sample_indices_])
    assert_array_equal(y_res.to_numpy(), y[sampler.sample_indices_])
    assert_array_equal(X_res.index, y_res.index)
    assert_array_equal(sampler.feature_names_in_, list("abcde"))
    val = sampler.validation_indices_
    train = np.setdiff1d(np.arange(300), val)
    first = LogisticRegression().fit(X[train], y[train])
    ref = lr_dp_ip(first, X[train], y[train], X[val], s[val])
    assert_allclose(sampler.influence_[train], ref, rtol=1e-7, atol=1e-12)


def test_in_an_imblearn_pipeline(data):
    X, y, s = data
    # imbalanced-learn passes a sampler's fit parameters only with routing
    with config_context(enable_metadata_routing=True):
        sampler = InfluenceSampler(
            LogisticRegression(), objective="fairness", random_state=0
        ).set_fit_resample_request(sensitive_features=True)
        pipe = make_imb_pipeline(StandardScaler(), sampler, LogisticRegression())
        pipe.fit(X, y, sensitive_features=s)
    idx = pipe[1].sample_indices_
    Xs = StandardScaler().fit_transform(X)
    alone = InfluenceSampler(LogisticRegression(), objective="fairness", random_state=0)
    alone.fit_resample(Xs, y, sensitive_features=s)
    assert_array_equal(idx, alone.sample_indices_)
    by_hand = LogisticRegression().fit(Xs[idx], y[idx])
    assert_allclose(pipe[-1].coef_, by_hand.coef_, rtol=1e-10)
    # prediction skips the sampler
    assert_allclose(pipe.predict_proba(X), by_hand.predict_proba(Xs), rtol=1e-10)
    # without a fairness objective no metadata is needed
    plain = make_imb_pipeline(
        InfluenceSampler(LogisticRegression(), random_state=0), LogisticRegression()
    ).fit(X, y)
    idx = plain[0].sample_indices_
    assert_allclose(plain[-1].coef_, LogisticRegression().fit(X[idx], y[idx]).coef_)


def test_fit_params_reach_the_inner_fit_sliced(data):
    X, y, _ = data
    w = np.random.RandomState(0).uniform(0.2, 3.0, size=len(X))
    sampler = InfluenceSampler(LogisticRegression(), random_state=0)
    sampler.fit_resample(X, y, sample_weight=w)
    val = sampler.validation_indices_
    train = np.setdiff1d(np.arange(300), val)
    first = LogisticRegression().fit(X[train], y[train], sample_weight=w[train])
    assert_allclose(sampler.estimator_.coef_, first.coef_, rtol=1e-12)
    ref = lr_ip(first, X[train], y[train], X[val], y[val])
    assert_allclose(sampler.influence_[train], ref, rtol=1e-7, atol=1e-12)


def test_lists_in_lists_out(data):
    X, y, _ = data
    sampler = InfluenceSampler(LogisticRegression(), random_state=0)
    X_res, y_res = sampler.fit_resample(X.tolist(), y.tolist())
    assert isinstance(X_res, list) and isinstance(y_res, list)
    assert_array_equal(np.array(X_res), X[sampler.sample_indices_])


def test_bad_input_changes_nothing(data):
    X, y, s = data
    X_bad = X.copy()
    X_bad[0, 0] = np.nan
    before = X_bad.copy()
    est = CountingLR()
    with pytest.raises(ValueError, match="NaN"):
        InfluenceSampler(est).fit_resample(X_bad, y)
    with pytest.raises(ValueError, match="needs sensitive_features"):
        InfluenceSampler(est, objective="fairness").fit_resample(X, y)
    with pytest.raises(ValueError, match="sensitive_features has 10 rows"):
        InfluenceSampler(est).fit_resample(X, y, sensitive_features=s[:10])
    assert_array_equal(X_bad, before)
    assert CountingLR.n_fits == 0
    assert not hasattr(est, "coef_")
