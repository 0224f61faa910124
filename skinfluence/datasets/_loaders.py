"""Offline loaders for the tabular data sets bundled with skinfluence.

The raw files live, gzip-compressed but otherwise unmodified, in
``skinfluence/datasets/data/`` (see the README there for provenance and
licences). All cleaning happens here, at load time.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import pandas as pd

__all__ = ["load_adult", "load_compas"]

_ADULT_FEATURES = [
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
_ADULT_NUMERIC = [
    "age",
    "fnlwgt",
    "education-num",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
]
_ADULT_TARGET = "income"
_ADULT_SUBSETS = ("train", "test", "all")

_COMPAS_FEATURES = [
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
_COMPAS_CATEGORICAL = ["sex", "age_cat", "race", "c_charge_degree"]
_COMPAS_TARGETS = ("two_year_recid", "is_recid")


def _data_path(name):
    return files("skinfluence.datasets") / "data" / name


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}.")


def _fresh_copies(df, features, target, sensitive):
    """``(X, y, sensitive_features)`` of the rows of ``df``, as new objects.

    ``df`` is a cached frame: what is handed out must be a deep copy, with a
    fresh ``RangeIndex``.
    """
    X = df[features].reset_index(drop=True).copy(deep=True)
    y = df[target].reset_index(drop=True).copy(deep=True)
    return X, y, X[sensitive].copy(deep=True)


def _read_adult_file(name, *, skiprows):
    with _data_path(name).open("rb") as fh:
        df = pd.read_csv(
            fh,
            compression="gzip",
            header=None,
            names=[*_ADULT_FEATURES, _ADULT_TARGET],
            skiprows=skiprows,
            skipinitialspace=True,
            na_values=["?"],
            keep_default_na=False,
            dtype={c: "int64" for c in _ADULT_NUMERIC},
        )
    return df


@lru_cache(maxsize=1)
def _adult_frame():
    """Cleaned Adult rows (train then test) with a ``_subset`` column.

    Cached: callers must copy before handing anything out.
    """
    train = _read_adult_file("adult.data.gz", skiprows=0)
    # The first line of adult.test is "|1x3 Cross validator", not data.
    test = _read_adult_file("adult.test.gz", skiprows=1)
    train["_subset"] = "train"
    test["_subset"] = "test"
    df = pd.concat([train, test], ignore_index=True)
    df = df.dropna(how="any").reset_index(drop=True)

    for col in [*_ADULT_FEATURES, _ADULT_TARGET]:
        if col not in _ADULT_NUMERIC:
            df[col] = df[col].astype(str).str.strip()
    # Test labels are written ">50K." / "<=50K.".
    label = df[_ADULT_TARGET].str.rstrip(".")
    unknown = set(label.unique()) - {">50K", "<=50K"}
    if unknown:  # pragma: no cover - guards against a corrupted data file
        raise RuntimeError(f"Unexpected Adult income labels: {sorted(unknown)}")
    df[_ADULT_TARGET] = (label == ">50K").astype("int64")

    # Categories are taken from all rows, so that "train" and "test" share
    # the same categories (and hence the same encoding).
    for col in _ADULT_FEATURES:
        if col not in _ADULT_NUMERIC:
            df[col] = df[col].astype("category")
    return df


def load_adult(*, subset="all"):
    """Load the UCI Adult (census income) data set.

    The data are read from a copy bundled with the package; no network
    access is needed.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="all"
        Which of the original files to return: ``"train"`` (``adult.data``),
        ``"test"`` (``adult.test``) or ``"all"`` (train rows followed by test
        rows).

    Returns
    -------
    X : pandas.DataFrame of shape (n_samples, 14)
        The 14 feature columns, in the original order: age, workclass,
        fnlwgt, education, education-num, marital-status, occupation,
        relationship, race, sex, capital-gain, capital-loss, hours-per-week,
        native-country. Numeric columns are ``int64``; the others have
        ``category`` dtype. The index is a ``RangeIndex``.
    y : pandas.Series of shape (n_samples,)
        Series named ``"income"``, ``int64``: 1 for ``">50K"``, 0 otherwise.
    sensitive_features : pandas.DataFrame of shape (n_samples, 2)
        Columns ``"sex"`` and ``"race"``, equal to the same columns of `X`.

    %(raises)s

    Notes
    -----
    Cleaning applied at load time:

    - the junk first line of ``adult.test`` (``|1x3 Cross validator``) is
      skipped, and the trailing ``"."`` of its labels is removed;
    - leading and trailing whitespace is stripped from every value;
    - rows with any missing value (``"?"``; only in workclass, occupation
      and native-country) are dropped. This leaves 30,162 train rows,
      15,060 test rows and 45,222 rows in all (of 32,561, 16,281 and
      48,842);
    - the categories of each categorical column are computed over all
      (train and test) rows, so both subsets share them; a subset may
      therefore have unused categories (e.g. ``"Holand-Netherlands"`` in
      native-country occurs only in the train file).

    The share of positives (income ``>50K``) is 7,508 / 30,162 (0.249) in
    train, 3,700 / 15,060 (0.246) in test and 11,208 / 45,222 (0.248) in all.

    %(copies)s

    Source: Becker, B. and Kohavi, R. (1996), Adult, UCI Machine Learning
    Repository, https://doi.org/10.24432/C5XW20, licence CC BY 4.0.

    Examples
    --------
    >>> from skinfluence.datasets import load_adult
    >>> X, y, sensitive_features = load_adult()
    >>> X.shape
    (45222, 14)
    >>> int(y.sum())
    11208
    >>> list(sensitive_features.columns)
    ['sex', 'race']
    >>> X_train, y_train, _ = load_adult(subset="train")
    >>> len(X_train), len(load_adult(subset="test")[0])
    (30162, 15060)
    """
    _check_choice("subset", subset, _ADULT_SUBSETS)
    df = _adult_frame()
    if subset != "all":
        df = df.loc[df["_subset"] == subset]
    return _fresh_copies(df, _ADULT_FEATURES, _ADULT_TARGET, ["sex", "race"])


@lru_cache(maxsize=1)
def _compas_frame():
    """COMPAS rows after ProPublica's filter: features and both targets.

    Cached: callers must copy before handing anything out.
    """
    with _data_path("compas-scores-two-years.csv.gz").open("rb") as fh:
        raw = pd.read_csv(fh, compression="gzip")
    # The raw file has the columns decile_score and priors_count twice
    # (pandas names the copies "decile_score.1" and "priors_count.1"); the
    # copies are identical, and the first ones are used.

    days = raw["days_b_screening_arrest"]
    keep = (
        days.between(-30, 30)  # NaN compares False, so missing days drop
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & (raw["score_text"] != "N/A")
        & raw["score_text"].notna()
    )
    df = raw.loc[keep, [*_COMPAS_FEATURES, *_COMPAS_TARGETS]]
    # None of the chosen columns has a missing value after the filter; drop
    # such rows anyway should a different copy of the file have some.
    df = df.dropna(how="any").reset_index(drop=True)

    for col in _COMPAS_FEATURES:
        if col in _COMPAS_CATEGORICAL:
            df[col] = df[col].astype(str).str.strip().astype("category")
        else:
            df[col] = df[col].astype("int64")
    for col in _COMPAS_TARGETS:
        df[col] = df[col].astype("int64")
    return df


def load_compas(*, target="two_year_recid"):
    """Load ProPublica's COMPAS recidivism data set.

    The data are read from a copy of ``compas-scores-two-years.csv``
    bundled with the package; no network access is needed.

    Parameters
    ----------
    target : {"two_year_recid", "is_recid"}, default="two_year_recid"
        Which column to return as the label: ``"two_year_recid"``
        (reoffended within two years) or ``"is_recid"`` (reoffended at all
        in the observation window).

    Returns
    -------
    X : pandas.DataFrame of shape (6172, 9)
        Columns sex, age, age_cat, race, juv_fel_count, juv_misd_count,
        juv_other_count, priors_count, c_charge_degree. sex, age_cat, race
        and c_charge_degree have ``category`` dtype; the others are
        ``int64``. The index is a ``RangeIndex``.
    y : pandas.Series of shape (6172,)
        ``int64`` 0/1 Series named after `target`.
    sensitive_features : pandas.DataFrame of shape (6172, 2)
        Columns ``"race"`` and ``"sex"``, equal to the same columns of `X`.

    %(raises)s

    Notes
    -----
    ProPublica's standard filter is applied: keep rows with
    ``days_b_screening_arrest`` in [-30, 30] (rows where it is missing are
    dropped), ``is_recid != -1``, ``c_charge_degree != "O"`` and
    ``score_text != "N/A"``. This keeps 6,172 of the 7,214 rows. In this file
    only the ``days_b_screening_arrest`` condition removes rows (307 of them
    have no value); the other three conditions remove none. After the
    filter none of the returned columns has a missing value, so no further
    rows are dropped.

    COMPAS's own outputs (``decile_score``, ``score_text`` and the violence
    scores) and the target columns are not among the features.

    Positives: 2,809 / 6,172 (0.455) for ``two_year_recid`` and
    2,990 / 6,172 (0.484) for ``is_recid``.

    %(copies)s

    Source: Angwin, J., Larson, J., Mattu, S. and Kirchner, L. (2016),
    Machine Bias, ProPublica, https://github.com/propublica/compas-analysis.

    Examples
    --------
    >>> from skinfluence.datasets import load_compas
    >>> X, y, sensitive_features = load_compas()
    >>> X.shape
    (6172, 9)
    >>> y.name, int(y.sum())
    ('two_year_recid', 2809)
    >>> list(sensitive_features.columns)
    ['race', 'sex']
    >>> int(load_compas(target="is_recid")[1].sum())
    2990
    """
    _check_choice("target", target, _COMPAS_TARGETS)
    return _fresh_copies(_compas_frame(), _COMPAS_FEATURES, target, ["race", "sex"])


_DOCS = {
    "raises": """Raises
    ------
    ValueError
        If an argument is not one of its allowed values.""",
    "copies": """Each call returns new objects: modifying them does not affect later
    calls.""",
}
for _f in (load_adult, load_compas):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ = _f.__doc__ % _DOCS
del _f
