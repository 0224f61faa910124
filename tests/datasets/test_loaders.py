"""Tests for the bundled-data loaders in skinfluence.datasets.

The expected numbers were measured on the raw files with a plain-Python
parser independent of the loaders (see skinfluence/datasets/data/README.md
for provenance); the row counts are also those published in the data README.
"""

import pandas as pd
import pytest
from pandas.api.types import is_integer_dtype

from skinfluence.datasets import load_adult, load_compas

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
]
ADULT_NUMERIC = [
    "age",
    "fnlwgt",
    "education-num",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
]
# subset -> (rows without missing values, rows with income >50K)
ADULT_COUNTS = {"train": (30162, 7508), "test": (15060, 3700), "all": (45222, 11208)}

COMPAS_COLUMNS = [
    "sex",
    "age",
    "age_cat",
    "race",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "c_charge_degree",
]
COMPAS_CATEGORICAL = ["sex", "age_cat", "race", "c_charge_degree"]
# target -> positives among the 6,172 filtered rows
COMPAS_POSITIVES = {"two_year_recid": 2809, "is_recid": 2990}


def _check_common(X, y, sensitive_features, n_rows, sensitive_columns):
    assert isinstance(X, pd.DataFrame)
    assert isinstance(y, pd.Series)
    assert isinstance(sensitive_features, pd.DataFrame)
    assert X.shape[0] == len(y) == len(sensitive_features) == n_rows
    for obj in (X, y, sensitive_features):
        assert isinstance(obj.index, pd.RangeIndex)
        assert obj.index.equals(pd.RangeIndex(n_rows))
    assert y.dtype == "int64"
    assert set(y.unique()) == {0, 1}
    assert not X.isna().any().any()
    assert list(sensitive_features.columns) == sensitive_columns
    for col in sensitive_columns:
        assert isinstance(sensitive_features[col].dtype, pd.CategoricalDtype)
        pd.testing.assert_series_equal(sensitive_features[col], X[col])


@pytest.mark.parametrize("subset", ["train", "test", "all"])
def test_load_adult(subset):
    X, y, sensitive_features = load_adult(subset=subset)
    n_rows, n_pos = ADULT_COUNTS[subset]
    _check_common(X, y, sensitive_features, n_rows, ["sex", "race"])
    assert list(X.columns) == ADULT_COLUMNS
    assert y.name == "income"
    assert int(y.sum()) == n_pos
    for col in ADULT_COLUMNS:
        if col in ADULT_NUMERIC:
            assert X[col].dtype == "int64", col
        else:
            assert isinstance(X[col].dtype, pd.CategoricalDtype), col
            categories = list(X[col].cat.categories)
            assert "?" not in categories, col
            assert all(c == c.strip() and c for c in categories), col
    assert set(X["sex"].unique()) == {"Female", "Male"}


def test_load_adult_default_is_all_and_consistent():
    X, y, _ = load_adult()
    assert y.mean() == pytest.approx(11208 / 45222)
    assert y.mean() == pytest.approx(0.248, abs=0.001)
    X_train, y_train, _ = load_adult(subset="train")
    X_test, y_test, _ = load_adult(subset="test")
    pd.testing.assert_frame_equal(
        pd.concat([X_train, X_test], ignore_index=True), X, check_categorical=True
    )
    pd.testing.assert_series_equal(pd.concat([y_train, y_test], ignore_index=True), y)
    # Test labels end in "." in the raw file; they must still count.
    assert int(y_test.sum()) > 0


def test_load_adult_subsets_share_categories():
    X_train, _, _ = load_adult(subset="train")
    X_test, _, _ = load_adult(subset="test")
    for col in X_train.select_dtypes("category"):
        assert X_train[col].dtype == X_test[col].dtype, col


def test_load_adult_first_rows():
    X, y, _ = load_adult(subset="train")
    first = X.iloc[0]
    assert first["age"] == 39
    assert first["workclass"] == "State-gov"
    assert first["fnlwgt"] == 77516
    assert first["native-country"] == "United-States"
    assert y.iloc[0] == 0
    X_test, y_test, _ = load_adult(subset="test")
    assert X_test.iloc[0]["fnlwgt"] == 226802
    assert X_test.iloc[0]["education"] == "11th"
    assert y_test.iloc[0] == 0


@pytest.mark.parametrize("target", ["two_year_recid", "is_recid"])
def test_load_compas(target):
    X, y, sensitive_features = load_compas(target=target)
    _check_common(X, y, sensitive_features, 6172, ["race", "sex"])
    assert list(X.columns) == COMPAS_COLUMNS
    assert y.name == target
    assert int(y.sum()) == COMPAS_POSITIVES[target]
    for col in COMPAS_COLUMNS:
        if col in COMPAS_CATEGORICAL:
            assert isinstance(X[col].dtype, pd.CategoricalDtype), col
        else:
            assert is_integer_dtype(X[col].dtype), col
    assert set(X["c_charge_degree"].unique()) == {"F", "M"}
    assert set(X["sex"].unique()) == {"Female", "Male"}
    assert X["race"].value_counts()["African-American"] == 3175
    assert X["race"].value_counts()["Caucasian"] == 2103


def test_load_compas_excludes_scores_and_targets():
    X, _, _ = load_compas()
    forbidden = {"decile_score", "score_text", "two_year_recid", "is_recid"}
    assert not forbidden & {c.split(".")[0] for c in X.columns}


def test_load_compas_default_target():
    _, y, _ = load_compas()
    assert y.name == "two_year_recid"


@pytest.mark.parametrize(
    "loader, kwargs",
    [
        (load_adult, {"subset": "train"}),
        (load_adult, {"subset": "all"}),
        (load_compas, {"target": "two_year_recid"}),
    ],
)
def test_results_are_independent_copies(loader, kwargs):
    X1, y1, s1 = loader(**kwargs)
    X2, y2, s2 = loader(**kwargs)
    assert X1 is not X2 and y1 is not y2 and s1 is not s2
    X_expected, y_expected, s_expected = X2.copy(), y2.copy(), s2.copy()

    X1.iloc[:, :] = X1.iloc[::-1].to_numpy()
    X1["extra"] = 0
    del X1[X1.columns[0]]
    y1.iloc[:] = 1 - y1.to_numpy()
    s1["sex"] = s1["sex"].cat.rename_categories(lambda c: c + "!")

    X3, y3, s3 = loader(**kwargs)
    pd.testing.assert_frame_equal(X3, X_expected)
    pd.testing.assert_series_equal(y3, y_expected)
    pd.testing.assert_frame_equal(s3, s_expected)
    # Mutating sensitive_features must not touch X of the same call either.
    s3.iloc[0, 0] = s3.iloc[1, 0]
    X3.loc[0, "sex"] = "Female"
    X4, _, s4 = loader(**kwargs)
    pd.testing.assert_frame_equal(X4, X_expected)
    pd.testing.assert_frame_equal(s4, s_expected)


@pytest.mark.parametrize("subset", ["Train", "valid", None, ""])
def test_load_adult_bad_subset(subset):
    with pytest.raises(ValueError, match="subset.*'train'.*'test'.*'all'"):
        load_adult(subset=subset)


@pytest.mark.parametrize("target", ["two_year", "violent_recid", None])
def test_load_compas_bad_target(target):
    with pytest.raises(ValueError, match="target.*'two_year_recid'.*'is_recid'"):
        load_compas(target=target)


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        load_adult("train")
    with pytest.raises(TypeError):
        load_compas("is_recid")
