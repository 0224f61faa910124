"""InfluenceFilter where users put it: Pipelines on Adult, GridSearchCV, cross_validate.

Scores are checked against compute_influence on the fitted model, and search
results against fits and metrics computed by hand (skinfluence.metrics and
fairlearn).
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from _tiny_nets import MLP, one_torch_thread  # noqa: F401
from fairlearn.metrics import demographic_parity_difference as fl_dp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.base import clone
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from skorch import NeuralNetClassifier

from skinfluence import Fairness, InfluenceFilter, compute_influence
from skinfluence.datasets import load_adult
from skinfluence.metrics import demographic_parity_difference


def to_float32(X):
    """Dense float32, as the skorch net's module expects."""
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)


@pytest.fixture(scope="module")
def adult():
    X, y, s = load_adult(subset="train")
    idx = np.random.RandomState(0).choice(len(X), 600, replace=False)
    X, y, s = (a.iloc[idx].reset_index(drop=True) for a in (X, y, s))
    return X, y, s["sex"]


def preprocess(X):
    """One-hot (every category of the column's dtype, so widths never vary) + scale."""
    cats = X.select_dtypes("category").columns
    return make_column_transformer(
        (
            OneHotEncoder(
                categories=[list(X[c].cat.categories) for c in cats],
                handle_unknown="ignore",
            ),
            cats,
        ),
        (StandardScaler(), make_column_selector(dtype_include="number")),
    )


def net(n_in, **kwargs):
    params = dict(
        module=MLP,
        module__n_in=n_in,
        module__n_out=2,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        max_epochs=4,
        batch_size=64,
        train_split=None,
        verbose=0,
    )
    params.update(kwargs)
    return NeuralNetClassifier(**params)


def width(X):
    return preprocess(X).fit_transform(X).shape[1]


def test_adult_pipeline_preprocess_then_filtered_net(adult):
    X, y, s = adult
    pipe = make_pipeline(
        preprocess(X),
        InfluenceFilter(
            net(width(X)),
            objective="fairness",
            method="ip",
            prune_ratio=0,
            constraint=None,  # one round of plain removal: the lowest rows
            rounds=1,
            random_state=0,
        ),
    )
    pipe.fit(X, y, influencefilter__sensitive_features=s)
    flt = pipe[-1]
    train = np.flatnonzero(~np.isnan(flt.influence_))
    val = flt.validation_indices_
    assert len(val) == math.ceil(0.2 * 600) and len(train) == 480
    # nothing pruned: estimator_ is the model the scores were computed on
    Xt = to_float32(pipe[0].transform(X))
    ref = compute_influence(
        flt.estimator_,
        Xt[train],
        y.to_numpy()[train],
        Xt[val],
        y.to_numpy()[val],
        objective="fairness",
        sensitive_features_val=s.to_numpy()[val],
    )
    assert_allclose(flt.influence_[train], ref, rtol=1e-4, atol=1e-7)
    # pruning 5%: same first model and scores, the lowest rows removed
    pruned = clone(pipe).set_params(influencefilter__prune_ratio=0.05)
    pruned.fit(X, y, influencefilter__sensitive_features=s)
    assert_array_equal(pruned[-1].influence_, flt.influence_)
    order = np.argsort(flt.influence_[train], kind="stable")
    assert_array_equal(pruned[-1].removed_indices_, np.sort(train[order[:24]]))
    proba = pruned.predict_proba(X)
    assert proba.shape == (600, 2)
    # a fitted pipeline, skorch net included, pickles
    back = pickle.loads(pickle.dumps(pruned))
    assert_array_equal(back.predict_proba(X), proba)


def test_adult_filter_around_a_pipeline_scores_in_the_models_input_space(adult):
    X, y, s = adult
    model = make_pipeline(
        preprocess(X), FunctionTransformer(to_float32), net(width(X), max_epochs=3)
    )
    flt = InfluenceFilter(model, prune_ratio=0, random_state=0).fit(X, y)
    assert_array_equal(flt.feature_names_in_, X.columns)
    train = np.flatnonzero(~np.isnan(flt.influence_))
    val = flt.validation_indices_
    yy = y.to_numpy()
    ref = compute_influence(
        flt.estimator_, X.iloc[train], yy[train], X.iloc[val], yy[val]
    )
    assert_allclose(flt.influence_[train], ref, rtol=1e-4, atol=1e-7)
    # by hand in the model's input space: the net and the transformed rows
    head, last = flt.estimator_[:-1], flt.estimator_[-1]
    ref2 = compute_influence(
        last,
        head.transform(X.iloc[train]),
        yy[train],
        head.transform(X.iloc[val]),
        yy[val],
    )
    assert_allclose(ref, ref2, rtol=1e-6, atol=1e-9)
    assert flt.predict(X).shape == (600,)


def _lr_search_pipe(X):
    flt = InfluenceFilter(
        LogisticRegression(max_iter=500), objective=Fairness(), random_state=0
    ).set_fit_request(sensitive_features=True)
    return make_pipeline(preprocess(X), flt)


def test_grid_search_with_routing_accuracy_and_fairness_scorers(adult):
    X, y, s = adult
    grid = {
        "influencefilter__prune_ratio": [0, 0.05, 0.1],
        "influencefilter__objective__metric": [
            "demographic_parity",
            "equal_opportunity",
        ],
    }
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    with config_context(enable_metadata_routing=True):
        dp_scorer = make_scorer(
            demographic_parity_difference, greater_is_better=False
        ).set_score_request(sensitive_features=True)
        search = GridSearchCV(
            _lr_search_pipe(X),
            grid,
            scoring={"accuracy": "accuracy", "dp": dp_scorer},
            refit="accuracy",
            cv=cv,
        )
        search.fit(X, y, sensitive_features=s)
        results = search.cv_results_
        for i, params in enumerate(results["params"]):
            for k, (tr, te) in enumerate(cv.split(X, y)):
                pipe = clone(_lr_search_pipe(X)).set_params(**params)
                pipe.fit(X.iloc[tr], y.iloc[tr], sensitive_features=s.iloc[tr])
                pred = pipe.predict(X.iloc[te])
                acc = accuracy_score(y.iloc[te], pred)
                dp = demographic_parity_difference(
                    y.iloc[te], pred, sensitive_features=s.iloc[te]
                )
                assert dp == pytest.approx(
                    fl_dp(y.iloc[te], pred, sensitive_features=s.iloc[te]), abs=1e-12
                )
                assert results[f"split{k}_test_accuracy"][i] == pytest.approx(acc)
                assert results[f"split{k}_test_dp"][i] == pytest.approx(-dp)
    # the refitted best pipeline prunes its share of the 480 training rows
    ratio = search.best_params_["influencefilter__prune_ratio"]
    assert len(search.best_estimator_[-1].removed_indices_) == math.floor(ratio * 480)


def test_cross_validate_with_routed_sensitive_features(adult):
    X, y, s = adult
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    with config_context(enable_metadata_routing=True):
        out = cross_validate(
            _lr_search_pipe(X),
            X,
            y,
            cv=cv,
            params={"sensitive_features": s},
            return_estimator=True,
        )
        for k, (tr, te) in enumerate(cv.split(X, y)):
            pipe = clone(_lr_search_pipe(X)).fit(
                X.iloc[tr], y.iloc[tr], sensitive_features=s.iloc[tr]
            )
            assert out["test_score"][k] == pytest.approx(
                pipe.score(X.iloc[te], y.iloc[te])
            )
            assert_array_equal(
                out["estimator"][k][-1].removed_indices_, pipe[-1].removed_indices_
            )


def test_grid_search_over_a_filtered_net_as_in_the_issue(adult):
    X, y, s = adult

    def filtered_net():
        return make_pipeline(
            preprocess(X),
            InfluenceFilter(
                net(width(X), max_epochs=2),
                objective="fairness",
                method="ip_ensemble",
                prune_ratio=0.05,
                constraint=None,  # one round of plain removal: the lowest rows
                rounds=1,
                random_state=0,
            ),
        )

    grid = {"influencefilter__prune_ratio": [0, 0.05]}
    search = GridSearchCV(filtered_net(), grid, cv=2).fit(
        X, y, influencefilter__sensitive_features=s
    )
    results = search.cv_results_
    # one cell by hand: prune 5% on the first of the two stratified folds
    i = list(results["param_influencefilter__prune_ratio"]).index(0.05)
    tr, te = next(StratifiedKFold(2).split(X, y))
    fit = dict(influencefilter__sensitive_features=s.iloc[tr])
    by_hand = filtered_net().set_params(**results["params"][i])
    by_hand.fit(X.iloc[tr], y.iloc[tr], **fit)
    assert results["split0_test_score"][i] == pytest.approx(
        accuracy_score(y.iloc[te], by_hand.predict(X.iloc[te])), abs=1e-12
    )
    # the rows it removed are the floor(5% of 240) lowest-scored of the 240
    # training rows of its 300 (60 validation rows), ranked here by brute force
    flt = by_hand[-1]
    scored = np.flatnonzero(~np.isnan(flt.influence_))
    assert len(scored) == 300 - math.ceil(0.2 * 300) == 240
    ranked = sorted(scored, key=lambda r: (flt.influence_[r], r))
    assert_array_equal(flt.removed_indices_, np.sort(ranked[:12]))
    # the scores are those of the first model, which pruning does not change
    kept_all = filtered_net().set_params(influencefilter__prune_ratio=0)
    kept_all.fit(X.iloc[tr], y.iloc[tr], **fit)
    assert_array_equal(kept_all[-1].influence_, flt.influence_)
    assert len(kept_all[-1].removed_indices_) == 0
    best = search.best_estimator_[-1]
    assert len(best.removed_indices_) == math.floor(
        search.best_params_["influencefilter__prune_ratio"] * 480
    )
