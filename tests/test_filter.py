"""InfluenceFilter: kept rows, refits and slicing against computations done by hand.

The logistic-regression scores are recomputed in closed form with numpy
(``grad l_i = (p_i - y_i) [x_i, 1]``), independently of the engine.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from _tiny_nets import one_torch_thread, tiny_net  # noqa: F401
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from skinfluence import Fairness, InfluenceFilter, compute_influence
from skinfluence.callbacks import TracInCheckpoints


# --------------------------------------------------------------- references
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lr_row_grads(clf, X, y):
    """Per-row gradients of the log-loss of a binary LR, shape (n, d + 1)."""
    p = sigmoid(X @ clf.coef_[0] + clf.intercept_[0])
    return (p - y)[:, None] * np.c_[X, np.ones(len(X))]


def lr_ip(clf, X, y, Xv, yv):
    """<grad mean val loss, grad l_i> for a binary LogisticRegression."""
    return lr_row_grads(clf, X, y) @ lr_row_grads(clf, Xv, yv).mean(0)


def lr_dp_ip(clf, X, y, Xv, sv):
    """<grad soft demographic-parity gap, grad l_i> for a binary LR."""
    p = sigmoid(Xv @ clf.coef_[0] + clf.intercept_[0])
    groups = np.unique(sv)
    means = np.array([p[sv == g].mean() for g in groups])
    hi, lo = groups[means.argmax()], groups[means.argmin()]
    dp = (p * (1 - p))[:, None] * np.c_[Xv, np.ones(len(Xv))]
    grad_j = dp[sv == hi].mean(0) - dp[sv == lo].mean(0)
    return lr_row_grads(clf, X, y) @ grad_j


def lowest(scores, k):
    return np.sort(np.argsort(scores, kind="stable")[:k])


class CountingLR(LogisticRegression):
    """LogisticRegression that counts its fits (to prove no training happened)."""

    n_fits = 0

    def fit(self, X, y, sample_weight=None):
        type(self).n_fits += 1
        return super().fit(X, y, sample_weight=sample_weight)


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


def split_of(flt, n):
    val = flt.validation_indices_
    return np.setdiff1d(np.arange(n), val), val


# ------------------------------------------------------------- the filter
def test_kept_rows_are_the_lowest_closed_form_scores(data):
    X, y, _ = data
    flt = InfluenceFilter(LogisticRegression(), prune_ratio=0.1, random_state=0)
    flt.fit(X, y)
    train, val = split_of(flt, len(X))
    assert len(val) == math.ceil(0.2 * 300)
    # stratified: each class's share of the validation rows is its share of y
    for c in (0, 1):
        assert abs(np.sum(y[val] == c) - 60 * np.mean(y == c)) < 1
    first = LogisticRegression().fit(X[train], y[train])
    ref = lr_ip(first, X[train], y[train], X[val], y[val])
    assert_allclose(flt.influence_[train], ref, rtol=1e-7, atol=1e-12)
    assert np.isnan(flt.influence_[val]).all()
    k = math.floor(0.1 * len(train))
    assert_array_equal(flt.removed_indices_, train[lowest(ref, k)])
    mask = np.zeros(300, bool)
    mask[train] = True
    mask[flt.removed_indices_] = False
    assert_array_equal(flt.sample_mask_, mask)
    refit = LogisticRegression().fit(X[mask], y[mask])
    assert_allclose(flt.predict_proba(X), refit.predict_proba(X), rtol=1e-10)
    assert_allclose(flt.decision_function(X), refit.decision_function(X), rtol=1e-10)
    assert_array_equal(flt.predict(X), refit.predict(X))
    assert flt.score(X, y) == pytest.approx(np.mean(refit.predict(X) == y))
    assert flt.objective_.__class__.__name__ == "Utility"
    assert flt.method_.__class__.__name__ == "IP"


def test_kept_rows_match_compute_influence_on_a_clone(data):
    X, y, _ = data
    flt = InfluenceFilter(LogisticRegression(C=0.5), prune_ratio=0.05, random_state=3)
    flt.fit(X, y)
    train, val = split_of(flt, len(X))
    first = clone(flt.estimator).fit(X[train], y[train])
    scores = compute_influence(first, X[train], y[train], X[val], y[val])
    assert_allclose(flt.influence_[train], scores, rtol=1e-12)
    assert_array_equal(flt.removed_indices_, train[lowest(scores, 12)])


def test_refit_on_all_and_negative(data):
    X, y, _ = data
    flt = InfluenceFilter(
        LogisticRegression(), prune_ratio="negative", refit_on="all", random_state=0
    ).fit(X, y)
    train, val = split_of(flt, len(X))
    first = LogisticRegression().fit(X[train], y[train])
    ref = lr_ip(first, X[train], y[train], X[val], y[val])
    assert_array_equal(flt.removed_indices_, train[ref < 0])
    assert 0 < len(flt.removed_indices_) < len(train)
    expected = np.ones(300, bool)
    expected[train[ref < 0]] = False
    assert_array_equal(flt.sample_mask_, expected)
    refit = LogisticRegression().fit(X[expected], y[expected])
    assert_allclose(flt.predict_proba(X), refit.predict_proba(X), rtol=1e-10)


def test_no_pruning_refits_on_the_training_rows(data):
    X, y, _ = data
    flt = InfluenceFilter(LogisticRegression(), prune_ratio=0, random_state=0).fit(X, y)
    train, _ = split_of(flt, len(X))
    assert len(flt.removed_indices_) == 0
    ref = LogisticRegression().fit(X[train], y[train])
    assert_allclose(flt.estimator_.coef_, ref.coef_, rtol=1e-12)


def test_explicit_validation_rows(data):
    X, y, _ = data
    Xt, yt, Xv, yv = X[:200], y[:200], X[200:], y[200:]
    flt = InfluenceFilter(LogisticRegression(), prune_ratio=0.1, random_state=0)
    flt.fit(Xt, yt, X_val=Xv, y_val=yv)
    assert len(flt.validation_indices_) == 0
    first = LogisticRegression().fit(Xt, yt)
    ref = lr_ip(first, Xt, yt, Xv, yv)
    assert_allclose(flt.influence_, ref, rtol=1e-7, atol=1e-12)
    assert_array_equal(flt.removed_indices_, lowest(ref, 20))
    # refit_on="all" adds the rows of X_val to the final fit
    flt_all = clone(flt).set_params(refit_on="all").fit(Xt, yt, X_val=Xv, y_val=yv)
    keep = flt_all.sample_mask_
    refit = LogisticRegression().fit(np.r_[Xt[keep], Xv], np.r_[yt[keep], yv])
    assert_allclose(flt_all.estimator_.coef_, refit.coef_, rtol=1e-10)


def test_sample_weight_is_sliced_to_each_fit(data):
    X, y, _ = data
    w = np.random.RandomState(0).uniform(0.2, 3.0, size=len(X))
    flt = InfluenceFilter(LogisticRegression(), prune_ratio=0.1, random_state=0)
    flt.fit(X, y, sample_weight=w)
    train, val = split_of(flt, len(X))
    first = LogisticRegression().fit(X[train], y[train], sample_weight=w[train])
    ref = lr_ip(first, X[train], y[train], X[val], y[val])
    assert_allclose(flt.influence_[train], ref, rtol=1e-7, atol=1e-12)
    mask = flt.sample_mask_
    refit = LogisticRegression().fit(X[mask], y[mask], sample_weight=w[mask])
    assert_allclose(flt.estimator_.coef_, refit.coef_, rtol=1e-10)
    unweighted = LogisticRegression().fit(X[mask], y[mask])
    assert not np.allclose(flt.estimator_.coef_, unweighted.coef_)

    # with metadata routing: the same numbers once the estimator requests it
    with config_context(enable_metadata_routing=True):
        est = LogisticRegression().set_fit_request(sample_weight=True)
        routed = InfluenceFilter(est, prune_ratio=0.1, random_state=0)
        routed.fit(X, y, sample_weight=w)
        assert_allclose(routed.estimator_.coef_, refit.coef_, rtol=1e-10)
        with pytest.raises(ValueError, match="sample_weight"):
            InfluenceFilter(LogisticRegression(), random_state=0).fit(
                X, y, sample_weight=w
            )


def test_fairness_scores_and_group_stratified_split(data):
    X, y, s = data
    flt = InfluenceFilter(
        LogisticRegression(), objective="fairness", prune_ratio=0.1,
        constraint=None, rounds=1, random_state=0,
    ).fit(X, y, sensitive_features=s)
    train, val = split_of(flt, len(X))
    for c in (0, 1):  # stratified by class x group
        for g in ("a", "b"):
            share = np.mean((y == c) & (s == g))
            assert abs(np.sum((y[val] == c) & (s[val] == g)) - 60 * share) < 1
    first = LogisticRegression().fit(X[train], y[train])
    ref = lr_dp_ip(first, X[train], y[train], X[val], s[val])
    assert_allclose(flt.influence_[train], ref, rtol=1e-7, atol=1e-12)
    assert_array_equal(flt.removed_indices_, train[lowest(ref, 24)])
    assert isinstance(flt.objective_, Fairness)


def test_sensitive_features_through_a_pipeline(data):
    X, y, s = data
    direct = InfluenceFilter(LogisticRegression(), objective="fairness", random_state=0)
    direct.fit(StandardScaler().fit_transform(X), y, sensitive_features=s)
    # without routing: the step prefix
    pipe = make_pipeline(StandardScaler(), clone(direct))
    pipe.fit(X, y, influencefilter__sensitive_features=s)
    assert_array_equal(pipe[-1].removed_indices_, direct.removed_indices_)
    assert_allclose(pipe.predict_proba(X), direct.predict_proba(pipe[0].transform(X)))
    # with routing: requested with set_fit_request
    with config_context(enable_metadata_routing=True):
        flt = clone(direct).set_fit_request(sensitive_features=True)
        pipe = make_pipeline(StandardScaler(), flt).fit(X, y, sensitive_features=s)
        assert_array_equal(pipe[-1].removed_indices_, direct.removed_indices_)
        unrequested = make_pipeline(StandardScaler(), clone(direct))
        with pytest.raises(ValueError, match="sensitive_features"):
            unrequested.fit(X, y, sensitive_features=s)


def test_dataframe_keeps_feature_names(data):
    X, y, _ = data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    flt = InfluenceFilter(LogisticRegression(), random_state=0).fit(df, pd.Series(y))
    assert_array_equal(flt.feature_names_in_, df.columns)
    ref = InfluenceFilter(LogisticRegression(), random_state=0).fit(X, y)
    assert_array_equal(flt.removed_indices_, ref.removed_indices_)
    assert_allclose(flt.predict_proba(df), ref.predict_proba(X))
    with pytest.raises(ValueError, match="feature names"):
        flt.predict(df.rename(columns={"f0": "other"}))


def test_pipeline_imputing_nan_is_accepted(data):
    X, y, _ = data
    X = X.copy()
    X[::7, 1] = np.nan
    est = make_pipeline(SimpleImputer(), LogisticRegression())
    flt = InfluenceFilter(est, random_state=0).fit(X, y)
    train, val = split_of(flt, len(X))
    first = clone(est).fit(X[train], y[train])
    Xi = first[0].transform(X)
    ref = lr_ip(first[-1], Xi[train], y[train], Xi[val], y[val])
    assert_allclose(flt.influence_[train], ref, rtol=1e-7, atol=1e-12)


# ------------------------------------------------------------------ skorch
def test_skorch_net_with_string_labels_and_float64_input(data):
    X, y, _ = data
    labels = np.array(["no", "yes"])[y]
    flt = InfluenceFilter(tiny_net(max_epochs=5), prune_ratio=0, random_state=0)
    flt.fit(X, labels)  # float64 X, string y
    assert_array_equal(flt.classes_, ["no", "yes"])
    pred = flt.predict(X)
    assert set(np.unique(pred)) <= {"no", "yes"}
    proba = flt.predict_proba(X)
    assert_array_equal(pred, flt.classes_[proba.argmax(1)])
    # nothing pruned: estimator_ is the model the scores were computed on
    train, val = split_of(flt, len(X))
    scores = compute_influence(
        flt.estimator_,
        X[train].astype(np.float32),
        y[train],
        X[val].astype(np.float32),
        y[val],
    )
    assert_allclose(flt.influence_[train], scores, rtol=1e-5)


def test_double_precision_skorch_module_gets_float64_input(data):
    """A float64 module instance is fed float64 rows (not cast to float32)."""
    from skorch import NeuralNetClassifier

    X, y, _ = data
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)
    ).double()
    net = NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        lr=0.1,
        train_split=None,
        verbose=0,
    )
    flt = InfluenceFilter(net, prune_ratio=0, random_state=0).fit(X, y)
    assert next(flt.estimator_.module_.parameters()).dtype == torch.float64
    train, val = split_of(flt, len(X))
    scores = compute_influence(flt.estimator_, X[train], y[train], X[val], y[val])
    assert_allclose(flt.influence_[train], scores, rtol=1e-10)


def test_deterministic_given_random_state(data):
    X, y, _ = data
    state = torch.get_rng_state()
    fits = [
        InfluenceFilter(tiny_net(max_epochs=4), prune_ratio=0.1, random_state=7).fit(
            X, y
        )
        for _ in range(2)
    ]
    assert torch.equal(torch.get_rng_state(), state)  # global state restored
    a, b = fits
    assert_array_equal(a.validation_indices_, b.validation_indices_)
    assert_array_equal(a.influence_, b.influence_)
    assert_array_equal(a.removed_indices_, b.removed_indices_)
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    other = InfluenceFilter(tiny_net(max_epochs=4), prune_ratio=0.1, random_state=8)
    assert not np.array_equal(
        other.fit(X, y).validation_indices_, a.validation_indices_
    )


def test_tracin_adds_the_checkpoint_callback(data):
    X, y, _ = data
    for callbacks in (None, "disable"):
        net = tiny_net(max_epochs=3, callbacks=callbacks)
        flt = InfluenceFilter(net, method="tracin", prune_ratio=0, random_state=0)
        flt.fit(X, y)
        assert net.callbacks == callbacks  # the user's net is untouched
        assert not hasattr(net, "callbacks_")
        names = [name for name, _ in flt.estimator_.callbacks_]
        assert "tracin_checkpoints" in names
        if callbacks == "disable":
            assert names == ["tracin_checkpoints"]
        cb = dict(flt.estimator_.callbacks_)["tracin_checkpoints"]
        assert len(cb.checkpoints_) == 3
        train, val = split_of(flt, len(X))
        Xf = X.astype(np.float32)
        ref = compute_influence(
            flt.estimator_, Xf[train], y[train], Xf[val], y[val], method="tracin"
        )
        assert_allclose(flt.influence_[train], ref, rtol=1e-5)
    # a net that already records checkpoints gets no second callback
    net = tiny_net(max_epochs=2, callbacks=[("mine", TracInCheckpoints())])
    flt = InfluenceFilter(net, method="tracin", prune_ratio=0, random_state=0).fit(X, y)
    assert [n for n, _ in flt.estimator_.callbacks_].count("mine") == 1
    assert "tracin_checkpoints" not in dict(flt.estimator_.callbacks_)


def test_pickle_and_clone_a_fitted_skorch_filter(data):
    X, y, _ = data
    flt = InfluenceFilter(tiny_net(max_epochs=3), random_state=0).fit(X, y)
    back = pickle.loads(pickle.dumps(flt))
    assert_array_equal(back.predict_proba(X), flt.predict_proba(X))
    assert_array_equal(back.removed_indices_, flt.removed_indices_)
    fresh = clone(flt)
    assert fresh.get_params()["random_state"] == 0
    assert not hasattr(fresh, "estimator_")


# ------------------------------------------------------------ memory, verbose
def test_memory_caches_the_first_fit_and_scores(data, tmp_path):
    X, y, _ = data
    plain = {
        r: InfluenceFilter(LogisticRegression(), prune_ratio=r, random_state=0).fit(
            X, y
        )
        for r in (0.05, 0.1)
    }
    for r in (0.05, 0.1):
        flt = InfluenceFilter(
            CountingLR(), prune_ratio=r, memory=str(tmp_path), random_state=0
        )
        before = CountingLR.n_fits
        flt.fit(X, y)
        # first call: first fit + refit; second call: the refit only
        assert CountingLR.n_fits - before == (2 if r == 0.05 else 1)
        assert_array_equal(flt.removed_indices_, plain[r].removed_indices_)
        assert_allclose(flt.influence_, plain[r].influence_, rtol=1e-12)
        assert_allclose(flt.predict_proba(X), plain[r].predict_proba(X), rtol=1e-12)


def test_verbose_shows_progress(data, capsys):
    X, y, _ = data
    InfluenceFilter(LogisticRegression(), verbose=1, random_state=0).fit(X, y)
    assert "InfluenceFilter" in capsys.readouterr().err
    InfluenceFilter(LogisticRegression(), verbose=0, random_state=0).fit(X, y)
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------- bad input
def _with(X, row, col, value):
    """A copy of X with one entry set."""
    X = X.copy()
    X[row, col] = value
    return X


# (name, spec(X, y, s) -> what to change, expected exception, its message)
BAD_CASES = [
    ("NaN", lambda X, y, s: dict(X=_with(X, 3, 2, np.nan)), ValueError, "NaN"),
    ("inf", lambda X, y, s: dict(X=_with(X, 5, 0, np.inf)), ValueError, "infinity"),
    (
        "NaN-pipeline",
        lambda X, y, s: dict(
            X=_with(X, 3, 2, np.nan), est=make_pipeline(StandardScaler(), CountingLR())
        ),
        ValueError,
        "NaN",
    ),
    (
        "len-y",
        lambda X, y, s: dict(y=y[:-1]),
        ValueError,
        "inconsistent numbers of samples",
    ),
    (
        "len-s",
        lambda X, y, s: dict(fit=dict(sensitive_features=s[:-3])),
        ValueError,
        "sensitive_features has 297 rows but X has 300",
    ),
    (
        "ratio-1",
        lambda X, y, s: dict(params=dict(prune_ratio=1.0)),
        ValueError,
        "prune_ratio",
    ),
    (
        "ratio-neg",
        lambda X, y, s: dict(params=dict(prune_ratio=-0.1)),
        ValueError,
        "prune_ratio",
    ),
    (
        "ratio-str",
        lambda X, y, s: dict(params=dict(prune_ratio="all")),
        ValueError,
        "prune_ratio",
    ),
    (
        "ratio-all",
        lambda X, y, s: dict(params=dict(prune_ratio=0.999)),
        ValueError,
        "fewer rows than classes",
    ),
    (
        "val-one-class",
        lambda X, y, s: dict(params=dict(validation_size=1)),
        ValueError,
        "validation split holds one class",
    ),
    (
        "X_val-one-class",
        lambda X, y, s: dict(fit=dict(X_val=X[:5], y_val=np.zeros(5, int))),
        ValueError,
        "validation rows hold one class",
    ),
    (
        "X_val-alone",
        lambda X, y, s: dict(fit=dict(X_val=X[:5])),
        ValueError,
        "both X_val and y_val",
    ),
    ("unsupported", lambda X, y, s: dict(est="svc"), TypeError, "SVC is not supported"),
    ("hinge", lambda X, y, s: dict(est="hinge"), TypeError, "loss='hinge'"),
    (
        "class_weight",
        lambda X, y, s: dict(est=CountingLR(class_weight="balanced")),
        ValueError,
        "class_weight",
    ),
    ("no-estimator", lambda X, y, s: dict(est=object()), ValueError, "estimator"),
    (
        "fair-no-s",
        lambda X, y, s: dict(params=dict(objective="fairness")),
        ValueError,
        "needs sensitive_features",
    ),
    (
        "fair-multiclass",
        lambda X, y, s: dict(
            y=np.arange(len(y)) % 3,
            params=dict(objective="fairness"),
            fit=dict(sensitive_features=s),
        ),
        ValueError,
        "binary target",
    ),
    (
        "fair-metric",
        lambda X, y, s: dict(
            params=dict(objective=Fairness(metric="parity")),
            fit=dict(sensitive_features=s),
        ),
        ValueError,
        "metric",
    ),
    (
        "fair-X_val-no-s",
        lambda X, y, s: dict(
            params=dict(objective="fairness"), fit=dict(X_val=X[:30], y_val=y[:30])
        ),
        ValueError,
        "sensitive_features_val",
    ),
    (
        "fair-s-nan",
        lambda X, y, s: dict(
            params=dict(objective="fairness"),
            fit=dict(sensitive_features=np.r_[s[:-1], None]),
        ),
        ValueError,
        "missing values",
    ),
    (
        "tracin-lr",
        lambda X, y, s: dict(params=dict(method="tracin")),
        ValueError,
        "checkpoints",
    ),
    (
        "objective",
        lambda X, y, s: dict(params=dict(objective="accuracy")),
        ValueError,
        "Unknown objective 'accuracy'",
    ),
    ("method", lambda X, y, s: dict(params=dict(method=3)), TypeError, "method"),
    ("continuous", lambda X, y, s: dict(y=X[:, 0]), ValueError, "Unknown label type"),
    (
        "one-class",
        lambda X, y, s: dict(y=np.zeros(len(y), int)),
        ValueError,
        "one class",
    ),
]


@pytest.mark.parametrize(
    "name,make_spec,exc,match", BAD_CASES, ids=[case[0] for case in BAD_CASES]
)
def test_bad_input_raises_before_training_and_changes_nothing(
    data, name, make_spec, exc, match
):
    from sklearn.linear_model import SGDClassifier
    from sklearn.svm import SVC

    X, y, s = data
    spec = make_spec(X, y, s)
    est = spec.get("est", CountingLR())
    est = {"svc": SVC(), "hinge": SGDClassifier(loss="hinge")}.get(
        est if isinstance(est, str) else None, est
    )
    Xb, yb = spec.get("X", X), spec.get("y", y)
    fit = spec.get("fit", {})
    copies = [np.array(Xb, copy=True), np.array(yb, copy=True)]
    fit_copies = {k: np.array(v, copy=True) for k, v in fit.items()}
    params_before = est.get_params() if hasattr(est, "get_params") else None
    flt = InfluenceFilter(est, random_state=0, **spec.get("params", {}))
    with pytest.raises(exc, match=match):
        flt.fit(Xb, yb, **fit)
    assert CountingLR.n_fits == 0, name
    assert_array_equal(Xb, copies[0])
    assert_array_equal(yb, copies[1])
    for k, v in fit.items():
        assert_array_equal(v, fit_copies[k])
    if params_before is not None:
        assert est.get_params() == params_before
        with pytest.raises(Exception, match="not fitted|NotFitted|has no attribute"):
            check_is_fitted(est)
    assert not hasattr(flt, "estimator_")


def test_bad_cases_have_unique_names():
    names = [case[0] for case in BAD_CASES]
    assert len(set(names)) == len(names)


def test_bad_dataframe_input_leaves_it_unchanged(data):
    X, y, s = data
    df = pd.DataFrame(X, columns=list("abcde"))
    df.loc[4, "c"] = np.inf
    sf = pd.DataFrame({"sex": s})
    before, s_before = df.copy(deep=True), sf.copy(deep=True)
    est = make_pipeline(StandardScaler(), CountingLR())
    with pytest.raises(ValueError, match="infinity"):
        InfluenceFilter(est, objective="fairness").fit(df, y, sensitive_features=sf)
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(sf, s_before)
    assert CountingLR.n_fits == 0


def test_pruning_every_row_of_a_class_is_refused_before_the_refit():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3))  # no signal: the rare class is never predicted
    y = np.zeros(300, int)
    y[:12] = 1  # 12 rows, about 10 of them training rows
    flt = InfluenceFilter(CountingLR(), method="loss", prune_ratio=0.1, random_state=0)
    with pytest.raises(ValueError, match="every training row of class 1"):
        flt.fit(X, y)
    assert CountingLR.n_fits == 1  # the first fit, never the refit
    assert not hasattr(flt, "estimator_")


def test_binary_net_with_string_labels_and_a_positive_label(data):
    from skorch import NeuralNetBinaryClassifier

    class Logit(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(5, 1)

        def forward(self, X):
            return self.lin(X).squeeze(-1)

    X, y, s = data
    labels = np.array(["neg", "pos"])[y]
    net = NeuralNetBinaryClassifier(
        Logit, max_epochs=5, lr=0.1, train_split=None, verbose=0
    )
    objective = Fairness(metric="equal_opportunity", pos_label="neg")
    flt = InfluenceFilter(net, objective=objective, prune_ratio=0, random_state=0)
    flt.fit(X, labels, sensitive_features=s)
    assert flt.objective.pos_label == "neg"  # the parameter stays as given
    assert set(np.unique(flt.predict(X))) <= {"neg", "pos"}
    train, val = split_of(flt, len(X))
    Xf = X.astype(np.float32)
    ref = compute_influence(
        flt.estimator_,
        Xf[train],
        y[train],
        Xf[val],
        y[val],
        objective=Fairness(metric="equal_opportunity", pos_label=0),  # "neg" is class 0
        sensitive_features_val=s[val],
    )
    assert_allclose(flt.influence_[train], ref, rtol=1e-5, atol=1e-9)


def test_more_bad_input_before_training(data):
    from sklearn.linear_model import SGDClassifier

    X, y, s = data
    with pytest.raises(ValueError, match="two classes only"):
        InfluenceFilter(SGDClassifier(loss="log_loss")).fit(X, np.arange(300) % 3)
    # a group whose validation rows hold no positive label: EO gap undefined
    s2 = np.array(["b"] * 300, dtype=object)
    s2[np.flatnonzero(y == 0)[:6]] = "c"
    flt = InfluenceFilter(
        CountingLR(), objective=Fairness(metric="equal_opportunity"), random_state=0
    )
    with pytest.raises(
        ValueError, match="Group 'c' has no validation rows? with a positive label"
    ):
        flt.fit(X, y, sensitive_features=s2)
    with pytest.raises(ValueError, match="pos_label='yes' is not one of the classes"):
        InfluenceFilter(CountingLR(), objective=Fairness(pos_label="yes")).fit(
            X, y, sensitive_features=s
        )
    with pytest.raises(ValueError, match="y_val holds labels that y does not"):
        InfluenceFilter(CountingLR()).fit(X, y, X_val=X[:20], y_val=np.arange(20) % 3)
    with pytest.raises(ValueError, match="refit_on='all'.*sample_weight"):
        InfluenceFilter(CountingLR(), refit_on="all").fit(
            X, y, X_val=X[:20], y_val=y[:20], sample_weight=np.ones(300)
        )
    assert CountingLR.n_fits == 0
