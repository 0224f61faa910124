"""Fairness(bound=b): one ranking from the first fit, and a search over how
many of its lowest-effect rows to act on, until the refit's hard gap on the
validation rows is at most b.

References are computed by hand: logistic regressions refitted here on the
kept rows, the soft demographic-parity gap in numpy, the hard gap by
fairlearn, the first count from ``compute_influence``'s scores sorted and
summed here, and the search's choice against brute force over the grid on
synthetic gap functions.
"""

from __future__ import annotations

import itertools
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
from skinfluence._bound import SEARCH_TOLERANCE, search_to_bound

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")

#: influence functions without damping to speak of: effect_i / n predicts the change
EXACT = InfluenceFunction(solver="exact", damping=1e-3)
#: the bound of the main fit: its search measures five k (the rounds) and
#: chooses one that is not the last measured
BOUND = 0.03


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


def hard_dp(y, pred, s):
    return fairlearn_metrics.demographic_parity_difference(
        y, pred, sensitive_features=s
    )


def train_rows(flt, n):
    return np.setdiff1d(np.arange(n), flt.validation_indices_)


def fit_bound(X, y, s, bound, **kw):
    params = dict(method=EXACT, constraint=None, prune_ratio=0.2, random_state=0)
    flt = InfluenceFilter(
        LogisticRegression(), objective=Fairness(bound=bound), **{**params, **kw}
    )
    return flt.fit(X, y, sensitive_features=s)


@pytest.fixture(scope="module")
def bounded(data):
    return fit_bound(*data, BOUND)


@pytest.fixture(scope="module")
def first(data, bounded):
    """The first fit by hand (every training row): its soft gap J, hard gap
    H0 and the ranking of compute_influence's scores, lowest first."""
    X, y, s = data
    train, val = train_rows(bounded, len(X)), bounded.validation_indices_
    fitted = LogisticRegression().fit(X[train], y[train])
    scores = compute_influence(
        fitted, X[train], y[train], X[val], y[val], objective=Fairness(),
        method=EXACT, sensitive_features_val=s[val],
    )  # fmt: skip
    return {
        "train": train,
        "val": val,
        "scores": scores,
        "order": np.argsort(scores, kind="stable"),
        "J": soft_dp(fitted, X[val], s[val]),
        "H0": hard_dp(y[val], fitted.predict(X[val]), s[val]),
    }


def record_of(flt, k):
    """The gap_path_ record of the fit that acted on k rows (each k is measured once)."""
    (record,) = [r for r in flt.gap_path_ if r["rows_acted"] == k]
    return record


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
def test_bound_is_reached_on_validation_rows_checked_by_hand(data, bounded, first):
    X, y, s = data
    train, val, order = first["train"], first["val"], first["order"]
    path = pd.DataFrame(bounded.gap_path_)
    assert list(path.columns) == [
        "round", "rows_acted", "gap", "hard_gap", "accuracy", "final"
    ]  # fmt: skip
    assert path["final"].sum() == 1
    assert_array_equal(path["round"], np.arange(len(path)))
    assert bounded.rounds_ == 5  # "auto" with a bound: at most 5 refits
    assert 3 <= len(path) <= 1 + bounded.rounds_  # the first refit missed the bound
    assert path["rows_acted"].is_unique and path["rows_acted"].iloc[0] == 0
    # every record by hand: refit on the training rows minus the k lowest
    # scores of the first fit (one ranking), measured on the validation rows
    for record in bounded.gap_path_:
        kept = np.sort(train[order[record["rows_acted"] :]])
        refit = LogisticRegression().fit(X[kept], y[kept])
        pred = refit.predict(X[val])
        hard = hard_dp(y[val], pred, s[val])
        assert record["hard_gap"] == pytest.approx(hard, abs=1e-12)
        assert record["gap"] == pytest.approx(soft_dp(refit, X[val], s[val]), rel=1e-6)
        assert record["accuracy"] == pytest.approx(np.mean(pred == y[val]))
    # the final model: the fewest rows measured whose hard gap is at most the bound
    k = path.loc[path["hard_gap"] <= BOUND, "rows_acted"].min()
    assert_array_equal(bounded.removed_indices_, np.sort(train[order[:k]]))
    kept = np.setdiff1d(train, bounded.removed_indices_)
    refit = LogisticRegression().fit(X[kept], y[kept])
    hard = hard_dp(y[val], refit.predict(X[val]), s[val])
    assert hard <= BOUND
    assert record_of(bounded, k)["hard_gap"] == pytest.approx(hard, abs=1e-12)
    # ... and it is that measured fit, not a new one
    assert_allclose(bounded.predict_proba(X), refit.predict_proba(X), rtol=1e-10)


@pytest.mark.parametrize("bound", [BOUND, 0.1])
def test_first_count_follows_the_predicted_change(data, bounded, first, bound):
    """The first k measured: the fewest lowest scores whose sum reaches
    -n J (1 - b / H0) (the soft gap asked to fall by the share the hard gap
    must), not past -n J, on the grid of n // 400 rows, at most the cap."""
    X, y, s = data
    flt = bounded if bound == BOUND else fit_bound(X, y, s, bound)
    scores, J, H0 = first["scores"], first["J"], first["H0"]
    n = len(scores)
    need, t = n * J * (1 - bound / H0), np.sort(scores)
    total, k = 0.0, 0
    while total > -need and k < n and t[k] < 0 and total + t[k] >= -n * J:
        total += t[k]
        k += 1
    step, cap = max(1, n // 400), math.floor(0.2 * n)
    k = min(max(step * round(k / step), step), cap)
    assert 0 < k < cap  # sized by the prediction, not the cap
    assert flt.gap_path_[1]["rows_acted"] == k


# --------------------------------------------------- the search, synthetic
#: signed gaps g(k) of acting on k rows: the hard gap is |g(k)|
SHAPES = {
    "linear_past_zero": lambda k: 0.25 - 0.004 * k,
    "convex_monotone": lambda k: 0.25 * math.exp(-k / 40),
    "concave_past_zero": lambda k: 0.25 - 2e-5 * k**2,
    "stairs_past_zero": lambda k: round((0.25 - 0.003 * k) * 60) / 60,
    "flat_then_past_zero": lambda k: 0.25 if k < 50 else 0.25 - 0.01 * (k - 50),
}


def search(g, k0, bound, rounds, step, cap=300):
    """search_to_bound on g, with the k it measured."""
    calls = []

    def measure(k):
        calls.append(k)
        return abs(g(k)), g(k)

    k, why = search_to_bound(measure, (g(0), g(0)), k0, cap, bound, rounds, step)
    return k, why, calls


@pytest.mark.parametrize("shape", SHAPES)
def test_search_finds_the_fewest_rows_within_a_step_or_the_tolerance(shape):
    """Against brute force over the grid: the k returned is accepted and lies
    within a grid step of the smallest accepted k, or its gap within
    SEARCH_TOLERANCE * bound below the bound; at most `rounds` measurements,
    each on the grid (or the cap) and none twice. The first k is the
    prediction, off by a factor 0.5 to 2."""
    g, cap = SHAPES[shape], 300
    for bound, step, off in itertools.product((0.02, 0.05, 0.1), (1, 3), (0.5, 1, 2)):
        grid = sorted(set(range(0, cap + 1, step)) | {cap})
        smallest = min(j for j in grid if abs(g(j)) <= bound)
        k, why, calls = search(g, max(1, int(off * smallest)), bound, 8, step)
        case = (bound, step, off, calls)
        assert why is None and abs(g(k)) <= bound, case
        close = k - smallest <= step or bound - abs(g(k)) <= SEARCH_TOLERANCE * bound
        assert close, case
        assert len(calls) <= 8 and len(set(calls)) == len(calls), case
        assert all(j in grid for j in calls), case


@pytest.mark.parametrize("shape", SHAPES)
def test_search_returns_the_fewest_accepted_rows_measured(shape):
    """With the default 5 refits: the smallest measured k whose gap is at
    most the bound, else the measured k (or 0) of the lowest gap."""
    g = SHAPES[shape]
    for bound, off in itertools.product((0.02, 0.05, 0.1), (0.5, 1, 2)):
        k, why, calls = search(g, int(off * 60), bound, 5, 1)
        assert len(calls) <= 5
        accepted = [j for j in calls if abs(g(j)) <= bound]
        if accepted:
            assert (k, why) == (min(accepted), None)
        else:
            assert k == min([0, *calls], key=lambda j: (abs(g(j)), j))
            assert why == "rounds" and len(calls) == 5


def test_search_edges():
    falling = SHAPES["linear_past_zero"]  # 0.25 - 0.004 k
    # the first fit already within the bound: no refit
    assert search(falling, 10, 0.3, 5, 1) == (0, None, [])
    # no row predicted to lower the gap: no refit
    assert search(falling, 0, 0.05, 5, 1) == (0, "rows", [])
    # the cap: its k measured (the first k clipped to it), then the search stops
    assert search(falling, 80, 0.05, 5, 1, cap=20) == (20, "cap", [20])
    # a rising gap: the secant doubles k, and the first fit stays the best
    k, why, calls = search(lambda j: 0.2 + 0.001 * j, 10, 0.05, 5, 1)
    assert (k, why, calls) == (0, "rounds", [10, 20, 40, 80, 160])


def test_search_says_why_when_the_gap_jumps_over_the_bound():
    """The gap jumps from 0.2 to -0.2 between k = 4 and k = 5: no k is
    accepted, and the bracket closes after three refits."""
    k, why, calls = search(lambda j: 0.2 if j < 5 else -0.2, 5, 0.05, 5, 1)
    assert k == 0 and len(calls) == 3
    assert why == "jump"


def test_cap_stops_above_the_bound_with_a_warning(data, first):
    X, y, s = data
    with pytest.warns(UserWarning, match=f"above the bound {BOUND:g}") as record:
        flt = fit_bound(X, y, s, BOUND, prune_ratio=0.05)
    train, val, order = first["train"], first["val"], first["order"]
    cap = math.floor(0.05 * len(train))
    # the predicted first k is past the cap: the cap is measured, and no more
    assert [r["rows_acted"] for r in flt.gap_path_] == [0, cap]
    assert_array_equal(flt.removed_indices_, np.sort(train[order[:cap]]))
    kept = np.setdiff1d(train, flt.removed_indices_)
    refit = LogisticRegression().fit(X[kept], y[kept])
    hard = hard_dp(y[val], refit.predict(X[val]), s[val])
    assert BOUND < hard < first["H0"]
    assert flt.gap_path_[-1]["hard_gap"] == pytest.approx(hard, abs=1e-12)
    message = next(str(w.message) for w in record if "above the bound" in str(w.message))
    assert f"caps the rows acted on at {cap}" in message
    assert f"{hard:.4g}" in message and f"acts on {cap} of the {cap} rows" in message


def test_rounds_limit_the_refits_with_a_warning(data, first):
    """rounds=1: one refit, at the predicted k, kept as it lowers the gap."""
    X, y, s = data
    with pytest.warns(UserWarning, match="rounds=1 refits are done"):
        flt = fit_bound(X, y, s, BOUND, rounds=1)
    assert flt.rounds_ == 1 and len(flt.gap_path_) == 2
    last = flt.gap_path_[-1]
    assert BOUND < last["hard_gap"] < first["H0"]
    assert len(flt.removed_indices_) == last["rows_acted"]


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


def test_sampler_returns_the_rows_of_the_bounded_filter(data, bounded):
    X, y, s = data
    flt = bounded
    sampler = InfluenceSampler(
        LogisticRegression(), objective=Fairness(bound=BOUND), method=EXACT,
        constraint=None, prune_ratio=0.2, random_state=0,
    )  # fmt: skip
    X_res, _ = sampler.fit_resample(X, y, sensitive_features=s)
    assert_array_equal(sampler.sample_indices_, np.flatnonzero(flt.sample_mask_))
    assert sampler.gap_path_ == flt.gap_path_


def test_noisy_validation_gap_warns_with_its_standard_error(data, first):
    """Two standard errors of the first fit's validation gap, computed here from
    its predictions (groups' rates and sizes), are in the warning when they
    exceed the bound; a bound above them gives no such warning."""
    X, y, s = data
    train, val = first["train"], first["val"]
    pred = LogisticRegression().fit(X[train], y[train]).predict(X[val])
    sv = s[val]
    rates = {g: np.mean(pred[sv == g] == 1) for g in ("f", "m")}
    sizes = {g: int(np.sum(sv == g)) for g in ("f", "m")}
    noise = 2 * math.sqrt(sum(rates[g] * (1 - rates[g]) / sizes[g] for g in rates))
    with pytest.warns(UserWarning, match="measure the gap") as record:
        fit_bound(X, y, s, BOUND)
    message = next(str(w.message) for w in record if "measure the gap" in str(w.message))
    assert f"+/-{noise:.3g}" in message and f"{sizes['f']}, {sizes['m']}" in message
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_bound(X, y, s, min(0.99, round(noise + 0.05, 2)))
    assert not any("measure the gap" in str(w.message) for w in caught)
