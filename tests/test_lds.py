"""linear_datamodeling_score against hand computations, scipy and real refits."""

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from skinfluence import compute_influence
from skinfluence.methods import InfluenceFunction
from skinfluence.metrics import linear_datamodeling_score


def test_hand_computation():
    # 4 rows, 4 subsets; predicted change = -(sum of kept scores)
    scores = np.array([3.0, 1.0, -1.0, -2.0])
    subsets = np.array(
        [
            [1, 1, 0, 0],  # pred -4
            [0, 0, 1, 1],  # pred +3
            [1, 0, 1, 0],  # pred -2
            [0, 1, 0, 1],  # pred +1
        ],
        dtype=bool,
    )
    measured = np.array([0.1, 0.4, 0.3, 0.2])
    # ranks of pred (-4, 3, -2, 1): 1, 4, 2, 3; of measured: 1, 4, 3, 2
    # Spearman without ties: 1 - 6 sum d^2 / (n (n^2 - 1)) = 1 - 6 * 2 / 60
    assert linear_datamodeling_score(scores, subsets, measured) == pytest.approx(0.8)


def test_hand_computation_with_ties():
    scores = np.array([1.0, 1.0, 0.0])
    subsets = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 1]])  # pred -1, -1, 0
    measured = np.array([1.0, 2.0, 3.0])
    # average ranks: pred (1.5, 1.5, 3), measured (1, 2, 3); Pearson of them:
    # centred (-0.5, -0.5, 1) and (-1, 0, 1): 1.5 / sqrt(1.5 * 2)
    expected = 1.5 / np.sqrt(3.0)
    assert linear_datamodeling_score(scores, subsets, measured) == pytest.approx(
        expected
    )


@pytest.mark.parametrize("seed", range(5))
def test_equals_scipy_spearmanr(seed):
    rng = np.random.default_rng(seed)
    n, m = 40, 60
    scores = rng.normal(size=n)
    scores[:10] = np.round(scores[:10])  # some tied scores
    subsets = rng.random((m, n)) < 0.5
    measured = -(subsets @ scores) + rng.normal(scale=2.0, size=m)
    measured[:6] = measured[0]  # tied measurements
    expected = spearmanr(-(subsets @ scores), measured).statistic
    assert linear_datamodeling_score(scores, subsets, measured) == pytest.approx(
        expected, abs=1e-12
    )


def test_scale_invariance_and_sign():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=30)
    subsets = rng.random((50, 30)) < 0.5
    measured = rng.normal(size=50)
    lds = linear_datamodeling_score(scores, subsets, measured)
    assert linear_datamodeling_score(7.5 * scores, subsets, measured) == (
        pytest.approx(lds)
    )
    assert linear_datamodeling_score(-scores, subsets, measured) == (
        pytest.approx(-lds)
    )


def test_constant_prediction_is_nan():
    subsets = np.ones((5, 3), dtype=bool)
    assert np.isnan(linear_datamodeling_score([1.0, 2.0, 3.0], subsets, np.arange(5)))


@pytest.mark.parametrize(
    ("scores", "subsets", "measured", "match"),
    [
        (np.ones((2, 2)), np.ones((3, 2), bool), np.ones(3), "scores must be 1-D"),
        (np.ones(2), np.ones(2, bool), np.ones(2), "2-D"),
        (np.ones(3), np.ones((3, 2), bool), np.ones(3), "columns"),
        (np.ones(2), np.ones((3, 2), bool), np.ones(4), "measured values"),
        (np.ones(2), np.full((3, 2), 2), np.ones(3), "boolean"),
        (np.ones(2), np.ones((1, 2), bool), np.ones(1), "two subsets"),
        (np.array([1.0, np.nan]), np.ones((3, 2), bool), np.ones(3), "finite"),
    ],
)
def test_bad_input(scores, subsets, measured, match):
    with pytest.raises(ValueError, match=match):
        linear_datamodeling_score(scores, subsets, measured)


def test_influence_function_predicts_logistic_regression_refits():
    # exact influence of a strongly regularised logistic regression predicts
    # the validation loss of refits on random 90% subsets (the sign end to end)
    X, y = make_classification(n_samples=300, n_features=5, flip_y=0.2, random_state=0)
    Xtr, ytr, Xval, yval = X[:200], y[:200], X[200:], y[200:]
    clf = LogisticRegression(C=0.1).fit(Xtr, ytr)
    scores = compute_influence(
        clf,
        Xtr,
        ytr,
        Xval,
        yval,
        method=InfluenceFunction(solver="exact", damping=0.0),
    )
    rng = np.random.default_rng(0)
    subsets = rng.random((40, 200)) < 0.9
    measured = [
        log_loss(
            yval, LogisticRegression(C=0.1).fit(Xtr[s], ytr[s]).predict_proba(Xval)
        )
        for s in subsets
    ]
    assert linear_datamodeling_score(scores, subsets, measured) > 0.8
