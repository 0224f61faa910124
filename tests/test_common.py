"""scikit-learn's (and imbalanced-learn's) checks on the influence estimators."""

from __future__ import annotations

import pytest
from _tiny_nets import one_torch_thread, tiny_net  # noqa: F401
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import InfluenceFilter, InfluenceSampler

ESTIMATORS = [
    InfluenceFilter(LogisticRegression(), random_state=0),
    InfluenceFilter(tiny_net(), random_state=0),
    InfluenceSampler(LogisticRegression(), random_state=0),
    # X passed through as given (the Pipeline validates it)
    InfluenceFilter(
        make_pipeline(StandardScaler(), LogisticRegression()), random_state=0
    ),
    InfluenceFilter(
        LogisticRegression(), method="ip_ensemble", refit_on="all", random_state=0
    ),
]


# every check must pass on every configuration: none is expected to fail
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.DataConversionWarning")
@imblearn_checks([InfluenceSampler(LogisticRegression(), random_state=0)])
def test_imblearn_compatible(estimator, check):
    check(estimator)
