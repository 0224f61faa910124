"""fairness_front: one row per bound, equal to separate filters, sharing fits.

References: separate InfluenceFilter fits per bound, fits counted by the
estimator itself, held-out gaps by fairlearn, baselines refitted here.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import Fairness, InfluenceFilter, InfluenceFunction, fairness_front
from skinfluence.baselines import reweighing_weights

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")

EXACT = InfluenceFunction(solver="exact", damping=1e-3)
SETTINGS = dict(method=EXACT, constraint=None, prune_ratio=0.2, random_state=0)


class CountingLR(LogisticRegression):
    """LogisticRegression counting its fits (module level: the cache pickles it)."""

    n_fits = 0

    def fit(self, X, y, sample_weight=None):
        type(self).n_fits += 1
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.fixture(scope="module")
def data():
    """600 rows to clean and 300 held out; groups share the label 65% of the
    time and a noisy copy of them is a feature."""
    X, y = make_classification(
        n_samples=900, n_features=4, n_informative=3, n_redundant=0, flip_y=0.05,
        random_state=0,
    )  # fmt: skip
    rng = np.random.RandomState(1)
    s = np.where(rng.rand(900) < np.where(y == 1, 0.65, 0.35), "m", "f")
    X = np.c_[X, (s == "m") + rng.randn(900)]
    return (X[:600], y[:600], s[:600]), (X[600:], y[600:], s[600:])


def dp(y, pred, s):
    return fairlearn_metrics.demographic_parity_difference(
        y, pred, sensitive_features=s
    )


def final_record(flt):
    """The gap_path_ record of the filter's final model (the fit that acted on
    the rows it removed; each number of rows is measured once)."""
    (record,) = [
        r for r in flt.gap_path_ if r["rows_acted"] == len(flt.removed_indices_)
    ]
    assert record["final"] and sum(r["final"] for r in flt.gap_path_) == 1
    return record


def check_row(row, flt, bound, test):
    """A row of the front against the separate filter ``flt``."""
    Xt, yt, st = test
    last = final_record(flt)
    assert row["validation_hard_gap"] == pytest.approx(last["hard_gap"], abs=1e-12)
    assert row["validation_hard_gap"] <= bound  # the bound is on the hard gap
    assert row["validation_gap"] == pytest.approx(last["gap"], rel=1e-12)
    assert row["validation_accuracy"] == pytest.approx(last["accuracy"])
    assert row["rows_touched"] == len(flt.removed_indices_)
    pred = flt.predict(Xt)
    assert row["test_gap"] == pytest.approx(dp(yt, pred, st), abs=1e-12)
    assert row["test_accuracy"] == pytest.approx(np.mean(pred == yt))


def test_rows_equal_separate_filters_and_fits_are_shared(data):
    """Each row equals a separate filter; the front fits the first model once
    and every number of rows measured by an earlier bound once (the cache),
    and no filter refits after its search (its final model is a measured fit)."""
    (X, y, s), test = data
    bounds = (0.05, 0.1)
    CountingLR.n_fits = 0
    front = fairness_front(
        CountingLR(), X, y, sensitive_features=s, bounds=bounds, X_test=test[0],
        y_test=test[1], sensitive_features_test=test[2], **SETTINGS,
    )  # fmt: skip
    front_fits = CountingLR.n_fits
    assert front["bound"].tolist() == list(bounds)
    assert (front["method"] == "influence").all()
    measured, new_fits = set(), []
    for (_, row), b in zip(front.iterrows(), bounds, strict=True):
        CountingLR.n_fits = 0
        flt = InfluenceFilter(CountingLR(), objective=Fairness(bound=b), **SETTINGS)
        flt.fit(X, y, sensitive_features=s)
        assert CountingLR.n_fits == len(flt.gap_path_)  # the first fit, then one per k
        check_row(row, flt, b, test)
        ks = {r["rows_acted"] for r in flt.gap_path_}  # 0: the first fit
        new_fits.append(len(ks - measured))
        measured |= ks
    assert new_fits[1] < len(flt.gap_path_)  # at least the first fit is shared
    assert front["fits"].tolist() == new_fits
    assert front_fits == sum(new_fits)


def test_row_is_the_final_model_when_it_was_not_measured_last(data):
    (X, y, s), test = data
    flt = InfluenceFilter(
        LogisticRegression(), objective=Fairness(bound=0.03), **SETTINGS
    )
    flt.fit(X, y, sensitive_features=s)
    assert flt.gap_path_[-1] is not final_record(flt)  # the case this test is for
    front = fairness_front(
        LogisticRegression(), X, y, sensitive_features=s, bounds=(0.03,),
        X_test=test[0], y_test=test[1], sensitive_features_test=test[2], **SETTINGS,
    )  # fmt: skip
    check_row(front.iloc[0], flt, 0.03, test)


def test_baselines_on_the_filter_rows(data):
    reductions = pytest.importorskip("fairlearn.reductions")
    (X, y, s), (Xt, yt, st) = data
    front = fairness_front(
        LogisticRegression(), X, y, sensitive_features=s, bounds=(0.1,), X_test=Xt,
        y_test=yt, sensitive_features_test=st, baselines=True, **SETTINGS,
    )  # fmt: skip
    assert front["method"].iloc[0] == "influence"
    assert {"kamiran_calders", "exponentiated_gradient"} <= set(front["method"])
    by_method = front.set_index("method")
    flt = InfluenceFilter(
        LogisticRegression(), objective=Fairness(bound=0.1), **SETTINGS
    )
    flt.fit(X, y, sensitive_features=s)
    train = np.setdiff1d(np.arange(len(X)), flt.validation_indices_)
    w = reweighing_weights(y[train], sensitive_features=s[train])
    kc = LogisticRegression().fit(X[train], y[train], sample_weight=w)
    row = by_method.loc["kamiran_calders"]
    assert row["test_gap"] == pytest.approx(dp(yt, kc.predict(Xt), st), abs=1e-12)
    assert row["test_accuracy"] == pytest.approx(np.mean(kc.predict(Xt) == yt))
    assert row["rows_touched"] == len(train) and row["fits"] == 1
    eg = reductions.ExponentiatedGradient(
        LogisticRegression(), reductions.DemographicParity(difference_bound=0.1)
    ).fit(X[train], y[train], sensitive_features=s[train])
    pred = eg.predict(Xt, random_state=0)
    row = by_method.loc["exponentiated_gradient"]
    assert row["bound"] == 0.1 and row["fits"] == eg.n_oracle_calls_
    assert row["test_gap"] == pytest.approx(dp(yt, pred, st), abs=1e-12)
    assert row["test_accuracy"] == pytest.approx(np.mean(pred == yt))


def test_plot_draws_the_front_per_method(data):
    from matplotlib.figure import Figure

    from skinfluence.plotting import plot_fairness_front

    (X, y, s), (Xt, yt, st) = data
    front = fairness_front(
        LogisticRegression(), X, y, sensitive_features=s, bounds=(0.1, 0.03),
        X_test=Xt, y_test=yt, sensitive_features_test=st, **SETTINGS,
    )  # fmt: skip
    ax = plot_fairness_front(front, ax=Figure().add_subplot())
    by_gap = front.sort_values("test_gap")
    assert_allclose(
        ax.lines[0].get_xydata(), by_gap[["test_gap", "test_accuracy"]].to_numpy()
    )
    assert [t.get_text() for t in ax.texts] == [f"{b:g}" for b in by_gap["bound"]]
    ax = plot_fairness_front(front, held_out=False, ax=Figure().add_subplot())
    assert "validation" in ax.get_xlabel()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(bounds=(0.05, 1.0)), "bound must be None or a number in"),
        (dict(bounds=()), "bounds must be numbers"),
        (dict(X_test=np.zeros((2, 5)), y_test=[0, 1]), "together"),
        (dict(metric="parity"), "metric must be one of"),
    ],
)
def test_bad_input_raises_before_any_fit(data, kwargs, match):
    (X, y, s), _ = data
    CountingLR.n_fits = 0
    with pytest.raises(ValueError, match=match):
        fairness_front(CountingLR(), X, y, sensitive_features=s, **kwargs)
    assert CountingLR.n_fits == 0
