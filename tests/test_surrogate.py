"""Any classifier cleaned through a surrogate: the surrogate chooses the rows,
the user's estimator is refitted on them."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceFilter, InfluenceSampler


def _data():
    X, y = make_classification(300, 6, flip_y=0.1, random_state=0)
    return X, y, (X[:, 0] > 0).astype(int)


def _forest():
    return RandomForestClassifier(n_estimators=10, random_state=0)


@pytest.mark.parametrize("objective", ["utility", "fairness"])
def test_the_surrogate_chooses_the_rows_the_estimator_is_refitted_on(objective):
    X, y, s = _data()
    kw = dict(objective=objective, prune_ratio=0.1, random_state=0)
    flt = InfluenceFilter(_forest(), surrogate=LogisticRegression(), **kw).fit(
        X, y, sensitive_features=s
    )
    alone = InfluenceFilter(LogisticRegression(), **kw).fit(X, y, sensitive_features=s)
    # the rows are those the surrogate, cleaned for itself, would keep
    assert_array_equal(flt.sample_mask_, alone.sample_mask_)
    assert_allclose(flt.influence_, alone.influence_, equal_nan=True)
    assert isinstance(flt.surrogate_, LogisticRegression)
    # and the forest is fitted on them, as by hand
    ref = _forest().fit(X[flt.sample_mask_], y[flt.sample_mask_])
    assert_allclose(flt.predict_proba(X), ref.predict_proba(X))
    assert isinstance(flt.estimator_, RandomForestClassifier)


def test_reweight_passes_the_weights_to_the_estimator_and_its_pipeline_step():
    X, y, s = _data()
    for est in (_forest(), make_pipeline(StandardScaler(), _forest())):
        flt = InfluenceFilter(
            est, surrogate=LogisticRegression(), objective="fairness", action="reweight",
            prune_ratio=0.1, random_state=0,
        ).fit(X, y, sensitive_features=s)
        m = flt.sample_mask_
        assert np.any(flt.sample_weight_[m] < 1)
        by_hand = make_pipeline(StandardScaler(), _forest()) if hasattr(est, "steps") else _forest()
        name = "randomforestclassifier__sample_weight" if hasattr(est, "steps") else "sample_weight"
        by_hand.fit(X[m], y[m], **{name: flt.sample_weight_[m]})
        assert_allclose(flt.predict_proba(X), by_hand.predict_proba(X))


def test_relabel_refits_the_estimator_on_the_new_labels():
    X, y, s = _data()
    flt = InfluenceFilter(
        _forest(), surrogate=LogisticRegression(), action="relabel", objective="fairness",
        prune_ratio=0.05, random_state=0,
    ).fit(X, y, sensitive_features=s)
    assert len(flt.relabeled_indices_) > 0
    m = flt.sample_mask_
    ref = _forest().fit(X[m], flt.y_fit_[m])
    assert_allclose(flt.predict_proba(X), ref.predict_proba(X))


def test_the_sampler_returns_the_surrogate_s_rows():
    X, y, s = _data()
    kw = dict(prune_ratio=0.1, random_state=0)
    Xs, ys = InfluenceSampler(_forest(), surrogate=LogisticRegression(), **kw).fit_resample(X, y)
    Xr, yr = InfluenceSampler(LogisticRegression(), **kw).fit_resample(X, y)
    assert_array_equal(Xs, Xr)
    assert_array_equal(ys, yr)


def test_errors_before_any_training():
    X, y, s = _data()
    with pytest.raises(TypeError, match="surrogate=LogisticRegression"):
        InfluenceFilter(_forest()).fit(X, y)
    with pytest.raises(ValueError, match="KNeighborsClassifier.fit takes none"):
        InfluenceFilter(
            KNeighborsClassifier(), surrogate=LogisticRegression(), action="reweight"
        ).fit(X, y)
    with pytest.raises(TypeError, match="RandomForestClassifier is not supported"):
        InfluenceFilter(LogisticRegression(), surrogate=_forest()).fit(X, y)
