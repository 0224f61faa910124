"""lds_noise_ceiling against a hand computation and a simulated perfect predictor."""

import numpy as np
import pytest

from skinfluence.metrics import lds_noise_ceiling


def test_hand_computation():
    # 2 subsets x 3 seeds. Seed variances (ddof 1): [1, 2, 3] -> 1, [2, 2, 5] -> 3;
    # var_w = (1 + 3) / 2 = 2. Means 2 and 3: var_b = 0.5. R = 3:
    # 1 - var_w / (R var_b) = 1 - 2 / 1.5 < 0 -> clipped to 0.
    assert lds_noise_ceiling([[1.0, 2.0, 3.0], [2.0, 2.0, 5.0]]) == 0.0
    # 3 subsets x 2 seeds. Seed variances: [0, 2] -> 2, [4, 4] -> 0, [8, 10] -> 2;
    # var_w = 4 / 3. Means 1, 4, 9: mean 14 / 3, deviations -11/3, -2/3, 13/3,
    # squares (121 + 4 + 169) / 9 = 294 / 9, var_b = 147 / 9 = 49 / 3.
    # 1 - (4 / 3) / (2 * 49 / 3) = 1 - 2 / 49 = 47 / 49.
    got = lds_noise_ceiling(np.array([[0.0, 2.0], [4.0, 4.0], [8.0, 10.0]]))
    assert got == pytest.approx(np.sqrt(47 / 49), rel=1e-12)


def test_deterministic_fits_and_constant_subsets():
    assert lds_noise_ceiling([[0.1, 0.1], [0.4, 0.4], [0.2, 0.2]]) == 1.0
    assert np.isnan(lds_noise_ceiling([[0.1, 0.3], [0.3, 0.1]]))


def test_a_perfect_predictor_correlates_at_the_ceiling():
    """Subsets' true objectives t ~ N(0, 1), R = 4 seeds of noise N(0, 1): the
    reliability of the means is 1 / (1 + 1/4), and a predictor that knows t
    correlates with the means at sqrt(0.8)."""
    rng = np.random.default_rng(0)
    t = rng.normal(size=20000)
    measured = t[:, None] + rng.normal(size=(20000, 4))
    perfect = np.corrcoef(t, measured.mean(1))[0, 1]
    got = lds_noise_ceiling(measured)
    assert got == pytest.approx(np.sqrt(0.8), abs=0.01)
    assert got == pytest.approx(perfect, abs=0.01)


@pytest.mark.parametrize(
    "measured, match",
    [
        ([0.1, 0.2, 0.3], "2-D"),
        ([[0.1], [0.2]], "two seeds"),
        ([[0.1, 0.2]], "two subsets"),
        ([[0.1, np.nan], [0.2, 0.3]], "finite"),
    ],
)
def test_bad_input(measured, match):
    with pytest.raises(ValueError, match=match):
        lds_noise_ceiling(measured)
