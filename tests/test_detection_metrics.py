"""Detection metrics against scikit-learn's roc_auc_score and f1_score."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from skinfluence.metrics import detection_f1, detection_roc_auc


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 200
    mask = rng.random(n) < 0.15
    scores = rng.integers(0, 12, size=n).astype(float) + 2.0 * mask  # many ties
    assert detection_roc_auc(mask, scores) == pytest.approx(
        roc_auc_score(mask, scores), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("contamination", [None, 0.05, 0.29, 0.5])
def test_f1_equals_sklearn_on_the_top_rows(seed, contamination):
    rng = np.random.default_rng(seed)
    n = 100
    mask = rng.random(n) < 0.1
    scores = rng.normal(size=n) + 1.5 * mask
    # floor(c n) written out; 0.29 * 100 is 28.999999999999996 in floating point
    k = {None: int(mask.sum()), 0.05: 5, 0.29: 29, 0.5: 50}[contamination]
    flagged = np.zeros(n, dtype=bool)
    flagged[np.argsort(-scores)[:k]] = True
    expected = f1_score(mask, flagged)
    assert detection_f1(mask, scores, contamination=contamination) == pytest.approx(
        expected
    )


def test_perfect_and_reversed_rankings():
    mask = np.array([True, False, False, True, False])
    scores = np.array([5.0, 1.0, 2.0, 4.0, 0.0])
    assert detection_roc_auc(mask, scores) == 1.0
    assert detection_roc_auc(mask, -scores) == 0.0
    assert detection_f1(mask, scores) == 1.0
    assert detection_f1(mask, -scores) == 0.0


def test_f1_breaks_ties_by_row_order():
    mask = np.array([False, True, False, False])
    assert detection_f1(mask, np.ones(4), contamination=0.25) == 0.0
    assert detection_f1(np.roll(mask, -1), np.ones(4), contamination=0.25) == 1.0


def test_invalid_inputs():
    with pytest.raises(ValueError, match="both"):
        detection_roc_auc([True, True], [0.1, 0.2])
    with pytest.raises(ValueError, match="lengths"):
        detection_f1([True, False], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        detection_roc_auc([True, False], [np.nan, 0.2])
    with pytest.raises(ValueError, match="contamination"):
        detection_f1([True, False], [0.1, 0.2], contamination=1.5)
    with pytest.raises(ValueError, match="boolean"):
        detection_f1([2, 0], [0.1, 0.2])
