"""Fairness gaps of skinfluence.metrics and their conditions: fairlearn, by hand."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from fairlearn.metrics import demographic_parity_difference as fl_dp
from fairlearn.metrics import equal_opportunity_difference as fl_eo
from fairlearn.metrics import equalized_odds_difference as fl_eodds

from skinfluence.metrics import (
    FAIRNESS_METRICS,
    check_fairness_metric,
    check_groups_defined,
    check_pos_label,
    demographic_parity_difference,
    encode_groups,
    equal_opportunity_difference,
    equalized_odds_difference,
    metric_conditions,
)


def _draw(seed, n=240, labels=(0, 1), groups=("a", "b", "c")):
    rng = np.random.RandomState(seed)
    y_true = rng.choice(labels, n)
    y_pred = rng.choice(labels, n)
    s = rng.choice(groups, n)
    return y_true, y_pred, s


def test_conditions_are_the_documented_rows():
    y = np.array(["no", "yes", "yes", "no", "yes"])
    pos = y == "yes"
    expected = {
        "demographic_parity": [np.ones(5, bool)],
        "equal_opportunity": [pos],
        "equalized_odds": [pos, ~pos],
    }
    assert FAIRNESS_METRICS == tuple(expected)
    for metric, masks in expected.items():
        got = metric_conditions(metric, y, pos_label="yes")
        assert len(got) == len(masks)
        for (what, mask), ref in zip(got, masks, strict=True):
            assert isinstance(what, str) and what
            assert mask.dtype == bool
            np.testing.assert_array_equal(mask, ref)


@pytest.mark.parametrize("bad", ["parity", None, 3])
def test_unknown_metric_is_refused_everywhere(bad):
    with pytest.raises(ValueError, match="metric must be one of"):
        check_fairness_metric(bad)
    with pytest.raises(ValueError, match="metric must be one of"):
        metric_conditions(bad, [0, 1], 1)


@pytest.mark.parametrize("seed", range(3))
def test_gaps_equal_fairlearn_with_string_labels_and_pos_label(seed):
    y_true, y_pred, s = _draw(seed, labels=("neg", "pos"))
    for pos in ("pos", "neg"):
        kw = dict(sensitive_features=s, pos_label=pos)
        assert demographic_parity_difference(y_true, y_pred, **kw) == pytest.approx(
            fl_dp(y_true == pos, y_pred == pos, sensitive_features=s), abs=1e-12
        )
        assert equal_opportunity_difference(y_true, y_pred, **kw) == pytest.approx(
            fl_eo(y_true == pos, y_pred == pos, sensitive_features=s), abs=1e-12
        )
        assert equalized_odds_difference(y_true, y_pred, **kw) == pytest.approx(
            fl_eodds(y_true == pos, y_pred == pos, sensitive_features=s), abs=1e-12
        )
        # the sum of the two gaps is twice fairlearn's mean of them
        mean = fl_eodds(y_true == pos, y_pred == pos, sensitive_features=s, agg="mean")
        assert equalized_odds_difference(
            y_true, y_pred, agg="sum", **kw
        ) == pytest.approx(2 * mean, abs=1e-12)


def test_intersectional_groups_equal_fairlearn_on_a_two_column_frame():
    y_true, y_pred, s1 = _draw(7, n=400, groups=("f", "m"))
    s2 = np.random.RandomState(8).choice(["x", "y", "z"], 400)
    frame = pd.DataFrame({"sex": s1, "race": s2})
    assert equal_opportunity_difference(
        y_true, y_pred, sensitive_features=frame
    ) == pytest.approx(fl_eo(y_true, y_pred, sensitive_features=frame), abs=1e-12)
    tpr = MetricFrame(
        metrics=true_positive_rate,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=frame,
    ).by_group
    assert equal_opportunity_difference(
        y_true, y_pred, sensitive_features=frame
    ) == pytest.approx(tpr.max() - tpr.min(), abs=1e-12)


def test_gaps_by_hand_on_a_small_table():
    # group a: y = 1 1 0 0, pred 1 0 1 0; group b: y = 1 0 0, pred 1 1 1
    y_true = [1, 1, 0, 0, 1, 0, 0]
    y_pred = [1, 0, 1, 0, 1, 1, 1]
    s = ["a"] * 4 + ["b"] * 3
    kw = dict(sensitive_features=s)
    assert demographic_parity_difference(y_true, y_pred, **kw) == pytest.approx(0.5)
    assert equal_opportunity_difference(y_true, y_pred, **kw) == pytest.approx(0.5)
    assert equalized_odds_difference(y_true, y_pred, **kw) == pytest.approx(0.5)
    assert equalized_odds_difference(y_true, y_pred, agg="sum", **kw) == pytest.approx(
        1.0
    )


def test_one_group_has_no_gap():
    y_true, y_pred, _ = _draw(0)
    s = np.full(len(y_true), "a")
    assert demographic_parity_difference(y_true, y_pred, sensitive_features=s) == 0.0
    assert fl_dp(y_true, y_pred, sensitive_features=s) == 0.0


def test_a_group_without_positives_makes_the_tpr_gap_undefined():
    y_true = np.array([1, 0, 1, 0, 0, 0])
    y_pred = np.array([1, 1, 0, 0, 1, 0])
    s = np.array(["a", "a", "a", "b", "b", "b"])
    # demographic parity needs no label: b's selection rate is 1/3, a's 2/3
    assert demographic_parity_difference(
        y_true, y_pred, sensitive_features=s
    ) == pytest.approx(1 / 3)
    for metric in (equal_opportunity_difference, equalized_odds_difference):
        with pytest.raises(
            ValueError, match="Group 'b' has no rows with a positive label, so the"
        ):
            metric(y_true, y_pred, sensitive_features=s)


def test_check_groups_defined_names_the_group_the_condition_and_the_remedy():
    y = np.array([1, 0, 1, 1, 1])
    codes, names = encode_groups(["p", "p", "q", "q", "q"])
    msg = (
        "Group 'q' has no validation rows with a negative label, so the "
        "equalized_odds gap is undefined. Raise validation_size."
    )
    with pytest.raises(ValueError) as info:
        check_groups_defined(
            "equalized_odds",
            y,
            codes,
            names,
            1,
            rows="validation rows",
            remedy="Raise validation_size.",
        )
    assert str(info.value) == msg
    # equal opportunity looks at positives only, which both groups have
    conditions = check_groups_defined("equal_opportunity", y, codes, names, 1)
    np.testing.assert_array_equal(conditions[0][1], y == 1)


def test_check_groups_defined_wants_min_groups():
    codes, names = encode_groups(["a", "a", "a"])
    with pytest.raises(
        ValueError,
        match=r"The validation rows hold one group of sensitive_features \['a'\]; "
        "the demographic_parity gap compares two groups or more. Pass X_val.",
    ):
        check_groups_defined(
            "demographic_parity",
            [0, 1, 0],
            codes,
            names,
            1,
            rows="validation rows",
            remedy="Pass X_val.",
            min_groups=2,
        )
    dp = check_groups_defined("demographic_parity", [0, 1, 0], codes, names, 1)
    assert len(dp) == 1 and dp[0][1].all()


def test_lengths_must_match():
    with pytest.raises(ValueError, match="different lengths"):
        equal_opportunity_difference([1, 0], [1, 0, 1], sensitive_features=["a"] * 3)


# --- string labels, pos_label, and the groups' warnings (issue 16, item 6) ---

_METRICS = {
    "demographic_parity": demographic_parity_difference,
    "equal_opportunity": equal_opportunity_difference,
    "equalized_odds": equalized_odds_difference,
}


def _fairlearn_gap(metric, y_true, y_pred, s, pos_label):
    """fairlearn's gap on the same string labels, pos_label passed explicitly."""
    rates = {
        "demographic_parity": [partial(selection_rate, pos_label=pos_label)],
        "equal_opportunity": [partial(true_positive_rate, pos_label=pos_label)],
        "equalized_odds": [
            partial(true_positive_rate, pos_label=pos_label),
            partial(false_positive_rate, pos_label=pos_label),
        ],
    }[metric]
    gaps = []
    for rate in rates:
        rate.__name__ = rate.func.__name__  # MetricFrame names its metric
        frame = MetricFrame(
            metrics=rate, y_true=y_true, y_pred=y_pred, sensitive_features=s
        )
        gaps.append(frame.difference())
    return max(gaps)


@pytest.mark.parametrize("metric", FAIRNESS_METRICS)
@pytest.mark.parametrize("seed", range(3))
def test_string_labels_equal_fairlearn_with_pos_label_given_and_defaulted(metric, seed):
    y_true, y_pred, s = _draw(seed, labels=("no", "yes"))
    gap = _METRICS[metric]
    for pos in ("yes", "no"):
        ref = _fairlearn_gap(metric, y_true, y_pred, s, pos)
        assert gap(y_true, y_pred, sensitive_features=s, pos_label=pos) == (
            pytest.approx(ref, abs=1e-12)
        )
    # the default is the greater label, "yes"; the gap is not the 0 of a
    # pos_label=1 that matches no label
    default = gap(y_true, y_pred, sensitive_features=s)
    assert default == pytest.approx(
        _fairlearn_gap(metric, y_true, y_pred, s, "yes"), abs=1e-12
    )
    assert default > 0.02


@pytest.mark.parametrize("metric", FAIRNESS_METRICS)
def test_default_pos_label_is_sklearns_one_on_numeric_labels(metric):
    # {0, 1} and {-1, 1}: 1, as fairlearn and scikit-learn (fairlearn infers it)
    for labels in ((0, 1), (-1, 1)):
        y_true, y_pred, s = _draw(3, labels=labels)
        ref = _fairlearn_gap(metric, y_true, y_pred, s, 1)
        assert _METRICS[metric](y_true, y_pred, sensitive_features=s) == (
            pytest.approx(ref, abs=1e-12)
        )


@pytest.mark.parametrize("metric", FAIRNESS_METRICS)
@pytest.mark.parametrize("bad", [1, "maybe", 0])
def test_a_pos_label_that_is_not_a_label_raises_naming_the_labels(metric, bad):
    y_true, y_pred, s = _draw(0, labels=("no", "yes"))
    msg = (
        f"pos_label={bad!r} is not one of the labels of y_true and y_pred "
        "['no', 'yes']."
    )
    with pytest.raises(ValueError) as info:
        _METRICS[metric](y_true, y_pred, sensitive_features=s, pos_label=bad)
    assert str(info.value) == msg
    # a numeric pos_label absent from numeric labels, too
    y_true, y_pred, s = _draw(0, labels=(0, 1))
    with pytest.raises(ValueError, match=r"pos_label=2 is not one of .* \[0, 1\]"):
        _METRICS[metric](y_true, y_pred, sensitive_features=s, pos_label=2)


def test_check_pos_label_rule():
    assert check_pos_label(np.array(["yes", "no", "no"])) == "yes"
    assert check_pos_label(["b", "a"], "a") == "a"
    assert check_pos_label([False, True]) is True
    assert check_pos_label([-1, 1, 1]) == 1
    assert check_pos_label([0, 0]) == 1  # one label: scikit-learn's 1
    assert check_pos_label([0], pos_label=1) == 1  # absent but of the labels' type
    with pytest.raises(ValueError, match=r"hold one label \['no'\].*pass pos_label"):
        check_pos_label(["no", "no"])
    with pytest.raises(
        ValueError, match=r"pos_label=1 is not one of the labels \['no'\]"
    ):
        check_pos_label(["no"], pos_label=1)  # a string label, a number given
    with pytest.raises(
        ValueError, match=r"binary target; the labels are 3 labels \[0, 1, 2\]"
    ):
        check_pos_label([0, 1, 2, 1])
    with pytest.raises(ValueError, match="binary target"):
        demographic_parity_difference(
            [0, 1, 2], [0, 1, 1], sensitive_features=list("aab")
        )


def test_many_groups_or_a_float_feature_warn_once_with_the_numbers():
    y_true, y_pred, _ = _draw(1, n=400)
    rng = np.random.RandomState(0)
    ages = rng.uniform(18, 90, 400)  # continuous: one group per value
    with pytest.warns(UserWarning) as record:
        demographic_parity_difference(y_true, y_pred, sensitive_features=ages)
    assert len(record) == 1
    assert str(record[0].message).startswith(
        f"sensitive_features has a float dtype (float64) and {len(np.unique(ages))} "
        "groups: every distinct value is a group of its own"
    )
    assert "pandas.cut" in str(record[0].message)
    many = rng.choice([f"v{i}" for i in range(25)], 400)  # 25 string groups
    with pytest.warns(UserWarning) as record:
        equal_opportunity_difference(y_true, y_pred, sensitive_features=many)
    assert len(record) == 1
    assert "sensitive_features holds 25 groups (more than 20)" in str(record[0].message)
    # a float column in a frame of two: named by its dtype, counted jointly
    frame = pd.DataFrame(
        {"sex": rng.choice(["f", "m"], 400), "w": ages.astype(np.float32)}
    )
    with pytest.warns(UserWarning, match=r"float dtype \(float32\) and 400 groups"):
        demographic_parity_difference(y_true, y_pred, sensitive_features=frame)


def test_normal_groups_do_not_warn():
    y_true, y_pred, s = _draw(2, n=300, labels=("no", "yes"))
    rng = np.random.RandomState(1)
    cases = [
        s,
        rng.choice([f"v{i}" for i in range(20)], 300),  # 20 groups: the limit
        rng.randint(0, 2, 300).astype(float),  # 0.0 / 1.0 codes as floats
        pd.Series(rng.choice([1, 2, 3], 300)),
    ]
    for groups in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for gap in _METRICS.values():
                gap(y_true, y_pred, sensitive_features=groups)
    # small groups do not warn in a metric: only where a gap is cleaned for
    tiny = np.array(["a"] * 297 + ["b"] * 3)
    y_true[-3:] = ["yes", "no", "yes"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        equalized_odds_difference(y_true, y_pred, sensitive_features=tiny)


def test_check_groups_defined_warns_naming_each_small_group_and_its_count():
    # group sizes by label: a = 30 pos / 25 neg, b = 12 pos / 30 neg, c = 3 / 2
    y = np.array([1] * 30 + [0] * 25 + [1] * 12 + [0] * 30 + [1] * 3 + [0] * 2)
    codes, names = encode_groups(["a"] * 55 + ["b"] * 42 + ["c"] * 5)
    kw = dict(rows="validation rows", remedy="Raise validation_size.", min_rows=20)
    with pytest.warns(UserWarning) as record:
        check_groups_defined("equalized_odds", y, codes, names, 1, **kw)
    assert len(record) == 1
    assert str(record[0].message).startswith(
        "Groups of sensitive_features with fewer than 20 validation rows: "
        "'b' has 12 with a positive label, 'c' has 3 with a positive label and "
        "2 with a negative label. The equalized_odds gap compares group means"
    )
    assert str(record[0].message).endswith("Raise validation_size.")
    with pytest.warns(
        UserWarning, match=r"20 validation rows: 'c' has 5\. The demographic"
    ):
        check_groups_defined("demographic_parity", y, codes, names, 1, **kw)
    big = codes != 2  # a and b: 20 rows or more under every condition but b's positives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_groups_defined(
            "demographic_parity", y[big], codes[big], names[:2], 1, **kw
        )
        check_groups_defined("equalized_odds", y, codes, names, 1)  # min_rows=None


def test_readme_scorer_in_a_grid_search_on_string_labels_equals_fairlearn_per_fold():
    """README's pattern: make_scorer(dp gap).set_score_request(sensitive_features)."""
    from sklearn import config_context
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skinfluence import Fairness, InfluenceFilter

    rng = np.random.RandomState(0)
    n = 600  # 160 validation rows per fit: no group under 20
    sex = rng.choice(["f", "m"], n)
    X = np.c_[rng.normal(size=(n, 3)), (sex == "m").astype(float)]
    y = np.where(X[:, 0] + 1.2 * X[:, 3] + rng.normal(0, 0.8, n) > 0.6, "yes", "no")
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    grid = {"prune_ratio": [0.0, 0.1]}
    with config_context(enable_metadata_routing=True):
        cleaner = InfluenceFilter(
            LogisticRegression(),
            objective=Fairness(metric="demographic_parity"),
            random_state=0,
        ).set_fit_request(sensitive_features=True)
        dp_gap = make_scorer(
            demographic_parity_difference, greater_is_better=False
        ).set_score_request(sensitive_features=True)
        search = GridSearchCV(
            cleaner, grid, scoring={"dp_gap": dp_gap}, refit=False, cv=cv
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # normal groups: none
            search.fit(X, y, sensitive_features=sex)
        for c, params in enumerate(search.cv_results_["params"]):
            for k, (train, test) in enumerate(cv.split(X, y)):
                est = clone(cleaner).set_params(**params)
                est.fit(X[train], y[train], sensitive_features=sex[train])
                pred = est.predict(X[test])
                rate = partial(selection_rate, pos_label="yes")
                rate.__name__ = "selection_rate"
                ref = MetricFrame(
                    metrics=rate,
                    y_true=y[test],
                    y_pred=pred,
                    sensitive_features=sex[test],
                ).difference()
                got = -search.cv_results_[f"split{k}_test_dp_gap"][c]
                assert got == pytest.approx(ref, abs=1e-12)
                assert got > 0.05  # the gap, not the 0 of pos_label=1
