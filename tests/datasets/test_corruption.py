"""flip_labels and inject_anomalies: exact shares, types, ranges, seeding."""

import numpy as np
import pandas as pd
import pytest

from skinfluence.datasets import flip_labels, inject_anomalies, load_compas


@pytest.mark.parametrize("kind", ["uniform", "class"])
@pytest.mark.parametrize(
    "n, rate", [(100, 0.1), (101, 0.1), (7, 0.5), (50, 0.0), (40, 1.0)]
)
def test_flip_labels_flips_exactly_the_requested_share(kind, n, rate):
    rng = np.random.default_rng(n)
    y = rng.integers(0, 3, size=n)
    y[:3] = [0, 1, 2]
    noisy, mask = flip_labels(y, rate, kind=kind, random_state=0)
    expected = int(np.floor(rate * n + 0.5))  # round half up
    assert mask.dtype == bool and mask.sum() == expected
    assert np.all(noisy[mask] != y[mask]) and np.all(noisy[~mask] == y[~mask])
    assert set(np.unique(noisy)) <= {0, 1, 2}


def test_flip_labels_round_half_up():
    y = np.tile([0, 1], 5)  # n = 10
    assert flip_labels(y, 0.25, random_state=0)[1].sum() == 3  # 2.5 -> 3
    assert flip_labels(y, 0.149, random_state=0)[1].sum() == 1


def test_uniform_flips_reach_every_other_class():
    y = np.zeros(3000, dtype=int)
    y[:1000], y[1000:2000] = 1, 2
    noisy, mask = flip_labels(y, 0.6, random_state=0)
    pairs = pd.crosstab(y[mask], noisy[mask])
    assert (np.diag(pairs.to_numpy()) == 0).all()
    off = pairs.to_numpy()[~np.eye(3, dtype=bool)]
    assert off.min() > 0.4 * off.mean()  # each of the 6 transitions is common


def test_class_flips_use_a_fixed_target_and_the_largest_class_first():
    y = np.array(["a"] * 20 + ["b"] * 50 + ["c"] * 30)
    noisy, mask = flip_labels(y, 0.1, kind="class", random_state=0)
    assert set(y[mask]) == {"b"} and set(noisy[mask]) == {"c"}
    noisy, mask = flip_labels(y, 0.6, kind="class", random_state=0)
    # 50 from "b" (the largest), then 10 from "c" (next largest), none from "a"
    assert (y[mask] == "b").sum() == 50 and (y[mask] == "c").sum() == 10
    assert set(noisy[y == "b"]) == {"c"} and set(noisy[mask & (y == "c")]) == {"a"}


def test_flip_labels_keeps_series_and_is_seeded():
    y = pd.Series(np.tile([3, 7], 30), index=np.arange(100, 160), name="target")
    a, mask_a = flip_labels(y, 0.2, random_state=42)
    b, mask_b = flip_labels(y, 0.2, random_state=42)
    c, mask_c = flip_labels(y, 0.2, random_state=43)
    assert (
        isinstance(a, pd.Series) and a.name == "target" and (a.index == y.index).all()
    )
    assert a.equals(b) and (mask_a == mask_b).all() and not (mask_a == mask_c).all()


def test_flip_labels_errors():
    with pytest.raises(ValueError, match="two classes"):
        flip_labels(np.zeros(5), 0.2)
    with pytest.raises(ValueError, match="rate"):
        flip_labels(np.arange(5), 1.2)
    with pytest.raises(ValueError, match="kind"):
        flip_labels(np.arange(5), 0.2, kind="pair")


@pytest.mark.parametrize("n, rate", [(90, 0.1), (91, 0.1), (30, 0.25)])
def test_inject_anomalies_share_and_ranges_on_arrays(n, rate):
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=n), rng.uniform(5, 6, size=n), np.ones(n)])
    y = rng.integers(0, 2, size=n)
    X_new, y_new, mask = inject_anomalies(X, y, rate, random_state=0)
    k = int(np.floor(rate * n / (1 - rate) + 0.5))
    assert mask.sum() == k and len(X_new) == n + k
    assert abs(mask.mean() - rate) <= 0.5 / (n + k) + 1e-12
    np.testing.assert_array_equal(X_new[~mask], X)  # originals kept, in order
    np.testing.assert_array_equal(y_new[~mask], y)
    lo, hi = X.min(0), X.max(0)
    width = np.where(hi > lo, hi - lo, 1.0)
    dist = np.maximum(X_new[mask] - hi, lo - X_new[mask]) / width
    assert np.all(dist >= 0.5 - 1e-12) and np.all(dist <= 1.5 + 1e-12)
    assert set(np.unique(y_new[mask])) <= {0, 1}
    assert not mask[:5].all() or not mask[-5:].all()  # spread, not a block


def test_inject_anomalies_on_a_dataframe_with_categorical_columns():
    X, y, _ = load_compas()
    X, y = X.iloc[:500].reset_index(drop=True), y.iloc[:500].reset_index(drop=True)
    X_new, y_new, mask = inject_anomalies(X, y, 0.1, random_state=1)
    assert mask.sum() == 56 and len(X_new) == 556
    assert (X_new.dtypes == X.dtypes).all() and isinstance(y_new, pd.Series)
    pd.testing.assert_frame_equal(X_new[~mask].reset_index(drop=True), X)
    for col in X.columns:
        if isinstance(X[col].dtype, pd.CategoricalDtype):
            assert set(X_new.loc[mask, col]) <= set(X[col])
        else:  # integer columns: outside the observed range, never back inside
            v = X_new.loc[mask, col]
            assert ((v > X[col].max()) | (v < X[col].min())).all()


def test_inject_anomalies_is_seeded_and_rejects_non_numeric_arrays():
    X = np.arange(40.0).reshape(20, 2)
    y = np.tile([0, 1], 10)
    a = inject_anomalies(X, y, 0.2, random_state=3)
    b = inject_anomalies(X, y, 0.2, random_state=3)
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(TypeError, match="DataFrame"):
        inject_anomalies(X.astype(str), y, 0.2)
    with pytest.raises(ValueError, match="rate"):
        inject_anomalies(X, y, 1.0)


def test_clustered_anomalies_are_tight_clusters_next_to_the_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(270, 4)) * [1.0, 2.0, 5.0, 0.5]
    y = rng.integers(0, 3, size=270)
    X_new, y_new, mask = inject_anomalies(
        X, y, 0.1, kind="clustered", n_clusters=3, random_state=0
    )
    assert mask.sum() == 30
    A = X_new[mask] / X.std(0)
    # three groups of 10, each within a few noise widths (0.05 std) of its mean
    centres = np.unique(np.round(A, 0), axis=0)
    assert len(centres) <= 6
    groups = [A[np.all(np.abs(A - A[i]) < 0.5, axis=1)] for i in range(len(A))]
    assert sorted({len(g) for g in groups}) == [10]
    assert max(g.std(0).max() for g in groups) < 0.1
    # ... shifted by 1 to 2 standard deviations from a real row in every column
    Xs = X / X.std(0)
    for g in groups:
        shift = np.abs(Xs - g.mean(0)).min(0)  # closest real value per column
        assert np.all(shift <= 2.2)
    # row labels by default (mixed within a cluster), one per cluster on request
    for i in range(len(A)):
        same = np.all(np.abs(A - A[i]) < 0.5, axis=1)
        assert len(np.unique(y_new[mask][same])) >= 2
    X2, y2, mask2 = inject_anomalies(
        X, y, 0.1, kind="clustered", label="cluster", random_state=0
    )
    A2 = X2[mask2] / X.std(0)
    for i in range(len(A2)):
        same = np.all(np.abs(A2 - A2[i]) < 0.5, axis=1)
        assert len(np.unique(y2[mask2][same])) == 1
    with pytest.raises(ValueError, match="clustered"):
        inject_anomalies(X, y, 0.1, label="cluster")
