"""Fairness gaps of skinfluence.metrics and their conditions: fairlearn, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, true_positive_rate
from fairlearn.metrics import demographic_parity_difference as fl_dp
from fairlearn.metrics import equal_opportunity_difference as fl_eo
from fairlearn.metrics import equalized_odds_difference as fl_eodds

from skinfluence.metrics import (
    FAIRNESS_METRICS,
    check_fairness_metric,
    check_groups_defined,
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
