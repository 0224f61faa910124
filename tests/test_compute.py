"""compute_influence: inputs, errors before work, and untouched user data."""

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skinfluence import (
    IP,
    Fairness,
    InfluenceFunction,
    IPEnsemble,
    Robustness,
    compute_influence,
)


@pytest.fixture
def problem():
    X, y = make_classification(n_samples=90, n_features=4, random_state=0)
    clf = LogisticRegression().fit(X[:60], y[:60])
    return clf, X[:60], y[:60], X[60:], y[60:]


def test_errors_name_the_problem(problem):
    clf, X, y, Xv, yv = problem
    cases = [
        (dict(X=X, y=y[:-1]), ValueError, "different lengths"),
        (dict(X_val=Xv, y_val=yv[:-1]), ValueError, "different lengths"),
        (dict(X_val=None), ValueError, "X_val and y_val"),
        (dict(method="nope"), ValueError, "Unknown method 'nope'.*'ip'"),
        (dict(objective="nope"), ValueError, "Unknown objective 'nope'"),
        (dict(method=3), TypeError, "method must be"),
        (dict(objective="fairness"), ValueError, "sensitive_features_val"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size=2.5), ValueError, "batch_size"),
    ]
    for kwargs, exc, match in cases:
        args = dict(X=X, y=y, X_val=Xv, y_val=yv) | kwargs
        with pytest.raises(exc, match=match):
            compute_influence(
                clf,
                args.pop("X"),
                args.pop("y"),
                args.pop("X_val"),
                args.pop("y_val"),
                **args,
            )


def test_nan_in_X_is_rejected(problem):
    clf, X, y, Xv, yv = problem
    X = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compute_influence(clf, X, y, Xv, yv)
    Xv = Xv.copy()
    Xv[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        compute_influence(clf, X[:3], y[:3], Xv, yv)


def test_inputs_and_estimator_are_unchanged(problem):
    clf, X, y, Xv, yv = problem
    before = [a.copy() for a in (X, y, Xv, yv)]
    coef = clf.coef_.copy()
    params = copy.deepcopy(clf.get_params())
    s = np.arange(len(yv)) % 2
    compute_influence(
        clf, X, y, Xv, yv, objective=Fairness(), method=IP(), sensitive_features_val=s
    )
    for a, b in zip((X, y, Xv, yv), before, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(clf.coef_, coef)
    assert clf.get_params() == params


def test_strategy_instances_are_not_modified(problem):
    clf, X, y, Xv, yv = problem
    obj = Fairness(metric="equal_opportunity")
    s = np.arange(len(yv)) % 2
    compute_influence(clf, X, y, Xv, yv, objective=obj, sensitive_features_val=s)
    assert obj.get_params() == {"metric": "equal_opportunity", "pos_label": None, "bound": None}
    assert not hasattr(obj, "bound_")


def test_dataframe_through_a_pipeline_equals_the_transformed_arrays():
    rng = np.random.RandomState(0)
    df = pd.DataFrame(
        {
            "a": rng.randn(80),
            "b": rng.choice(["x", "y", "z"], 80),
            "c": rng.rand(80) * 10,
        }
    )
    y = ((df.a + (df.b == "x")) > 0.5).astype(int).to_numpy()
    pre = make_column_transformer(
        (OneHotEncoder(), ["b"]), (StandardScaler(), ["a", "c"])
    )
    pipe = make_pipeline(pre, LogisticRegression()).fit(df[:60], y[:60])
    got = compute_influence(pipe, df[:60], y[:60], df[60:], y[60:])
    Z, Zv = pipe[0].transform(df[:60]), pipe[0].transform(df[60:])
    expected = compute_influence(pipe[-1], Z, y[:60], Zv, y[60:])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_string_labels(problem):
    clf, X, y, Xv, yv = problem
    labels = np.array(["no", "yes"])
    clf2 = LogisticRegression().fit(X, labels[y])
    a = compute_influence(clf2, X, labels[y], Xv, labels[yv])
    b = compute_influence(clf, X, y, Xv, yv)
    np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method=IPEnsemble(max_dropout=1.5)), "max_dropout"),
        (dict(method=IPEnsemble(n_members=0)), "n_members"),
        (dict(method=InfluenceFunction(solver="newton")), "solver"),
        (dict(method=InfluenceFunction(damping=-1.0)), "damping"),
        (dict(method=InfluenceFunction(max_iter=0)), "max_iter"),
        (dict(objective=Fairness(metric="parity")), "metric"),
        (dict(objective=Robustness(epsilon=-0.1)), "epsilon"),
        (dict(objective=Robustness(attack="pgd", steps=0)), "steps"),
    ],
)
def test_strategy_parameters_are_checked_before_any_work(
    problem, kwargs, match, monkeypatch
):
    clf, X, y, Xv, yv = problem
    import skinfluence._scoring as compute

    def no_model(*args, **kw):
        raise AssertionError("the model was touched before the parameters were checked")

    monkeypatch.setattr(compute, "as_torch_model", no_model)
    with pytest.raises(ValueError, match=match):
        compute_influence(
            clf, X, y, Xv, yv, sensitive_features_val=np.arange(len(yv)) % 2, **kwargs
        )


def test_verbose_shows_progress_bars(problem, capsys):
    clf, X, y, Xv, yv = problem
    quiet = compute_influence(
        clf, X, y, Xv, yv, method=IPEnsemble(n_members=3), random_state=0, batch_size=16
    )
    assert capsys.readouterr().err == ""
    loud = compute_influence(
        clf,
        X,
        y,
        Xv,
        yv,
        method=IPEnsemble(n_members=3),
        random_state=0,
        verbose=1,
        batch_size=16,
    )
    err = capsys.readouterr().err
    # off a terminal only the outermost bar is drawn (a nested one would
    # leave a line per update in a log file)
    assert "ensemble members" in err and "inner products" not in err
    np.testing.assert_array_equal(quiet, loud)
