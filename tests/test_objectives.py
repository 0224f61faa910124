"""Objectives: gradients against finite differences, gaps against fairlearn."""

import warnings

import numpy as np
import pytest
import torch
from _brute import rel_err
from cases import make_case
from fairlearn.metrics import (
    demographic_parity_difference as fl_dp,
)
from fairlearn.metrics import (
    equal_opportunity_difference as fl_eo,
)
from fairlearn.metrics import (
    equalized_odds_difference as fl_eodds,
)

from skinfluence import _tree as tree
from skinfluence.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from skinfluence.models import as_torch_model
from skinfluence.objectives import Fairness, Robustness, Utility


def _binary_model(seed=0, n_val=60):
    module, loss, X, y, Xv, yv = make_case("mlp_tanh_ce", n_val=n_val, seed=seed)
    module[-1] = torch.nn.Linear(7, 2).double()
    yv = (Xv[:, 0] + 0.3 * Xv[:, 1] > 0).long()
    return as_torch_model(module, loss=loss), Xv, yv


def _groups(n, k, seed=0):
    return np.random.RandomState(seed).choice([f"g{i}" for i in range(k)], size=n)


def _fd_directional(bound, v, h=1e-6):
    p = bound.model.params
    return (bound.value(tree.add(p, v, h)) - bound.value(tree.add(p, v, -h))) / (2 * h)


OBJECTIVES = [
    (Utility(), 2),
    (Fairness(metric="demographic_parity"), 2),
    (Fairness(metric="demographic_parity"), 3),
    (Fairness(metric="equal_opportunity"), 2),
    (Fairness(metric="equal_opportunity"), 4),
    (Fairness(metric="equalized_odds"), 3),
    (Robustness(attack="fgsm", epsilon=0.1), 2),
    (Robustness(attack="pgd", epsilon=0.1, steps=5), 2),
]


@pytest.mark.parametrize("objective,n_groups", OBJECTIVES, ids=lambda o: repr(o))
@pytest.mark.parametrize("batch_size", [8, 4096])
def test_gradient_matches_finite_differences(objective, n_groups, batch_size):
    model, Xv, yv = _binary_model()
    bound = objective.bind(model, Xv, yv, sensitive_features=_groups(len(yv), n_groups))
    grad = bound.gradient(batch_size=batch_size)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        v = {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in model.params.items()}
        assert float(tree.dot(grad, v)) == pytest.approx(_fd_directional(bound, v), rel=1e-6, abs=1e-9)


def _soft_gap_reference(p, y, s, metric):
    """Group means of p computed with pandas, independently of the objective."""
    import pandas as pd

    df = pd.DataFrame({"p": p, "y": y, "s": s})

    def gap(frame):
        means = frame.groupby("s")["p"].mean()
        return means.max() - means.min()

    if metric == "demographic_parity":
        return gap(df)
    if metric == "equal_opportunity":
        return gap(df[df.y == 1])
    return gap(df[df.y == 1]) + gap(df[df.y == 0])


@pytest.mark.parametrize("metric", ["demographic_parity", "equal_opportunity", "equalized_odds"])
@pytest.mark.parametrize("n_groups", [2, 3])
def test_fairness_value_is_the_soft_gap(metric, n_groups):
    model, Xv, yv = _binary_model()
    s = _groups(len(yv), n_groups, seed=1)
    bound = Fairness(metric=metric).bind(model, Xv, yv, sensitive_features=s)
    with torch.no_grad():
        p = model.log_proba(model.params, Xv)[:, 1].exp().numpy()
    assert bound.value() == pytest.approx(_soft_gap_reference(p, yv.numpy(), s, metric), rel=1e-12)


def test_fairness_pos_label_and_intersectional_groups():
    model, Xv, yv = _binary_model()
    s2 = np.stack([_groups(len(yv), 2, 1), _groups(len(yv), 2, 2)], axis=1)
    bound = Fairness(pos_label=0).bind(model, Xv, yv, sensitive_features=s2)
    with torch.no_grad():
        p0 = model.log_proba(model.params, Xv)[:, 0].exp().numpy()
    joint = np.array([f"{a}|{b}" for a, b in s2])
    assert bound.value() == pytest.approx(_soft_gap_reference(p0, yv.numpy(), joint, "demographic_parity"))


@pytest.mark.parametrize("seed", range(4))
def test_hard_gaps_equal_fairlearn(seed):
    rng = np.random.RandomState(seed)
    n = 200
    y_true = rng.randint(0, 2, n)
    y_pred = rng.randint(0, 2, n)
    s = rng.choice(["a", "b", "c"], n)
    assert demographic_parity_difference(y_true, y_pred, sensitive_features=s) == pytest.approx(
        fl_dp(y_true, y_pred, sensitive_features=s)
    )
    assert equal_opportunity_difference(y_true, y_pred, sensitive_features=s) == pytest.approx(
        fl_eo(y_true, y_pred, sensitive_features=s)
    )
    assert equalized_odds_difference(y_true, y_pred, sensitive_features=s) == pytest.approx(
        fl_eodds(y_true, y_pred, sensitive_features=s)
    )


def test_soft_objective_at_hard_predictions_equals_fairlearn():
    """A saturated model (p in {0, 1}) gives fairlearn's hard gaps."""
    model, Xv, yv = _binary_model()
    with torch.no_grad():
        model.params = tree.scale(model.params, 1.0)
        model.params["2.weight"] = model.params["2.weight"] * 1e4
        model.params["2.bias"] = model.params["2.bias"] * 1e4
        p = model.log_proba(model.params, Xv)[:, 1].exp().numpy()
    assert np.all((p < 1e-12) | (p > 1 - 1e-12))
    y_pred = (p > 0.5).astype(int)
    s = _groups(len(yv), 3, 5)
    for metric, ref in [("demographic_parity", fl_dp), ("equal_opportunity", fl_eo)]:
        value = Fairness(metric=metric).bind(model, Xv, yv, sensitive_features=s).value()
        assert value == pytest.approx(ref(yv.numpy(), y_pred, sensitive_features=s), abs=1e-9)


def test_fairness_errors_name_the_problem():
    model, Xv, yv = _binary_model()
    with pytest.raises(ValueError, match="sensitive features"):
        Fairness().bind(model, Xv, yv)
    s = np.array(["a"] * len(yv), dtype=object)
    with pytest.raises(ValueError, match="two groups"):
        Fairness().bind(model, Xv, yv, sensitive_features=s)
    s = np.where(yv.numpy() == 1, "a", "b")  # group "b" has no positives
    s[0] = "b" if yv[0] == 0 else s[0]
    with pytest.raises(ValueError, match="Group 'b' has no validation rows with a positive label"):
        Fairness(metric="equal_opportunity").bind(model, Xv, yv, sensitive_features=s)
    with pytest.raises(ValueError, match="different lengths|rows but"):
        Fairness().bind(model, Xv, yv, sensitive_features=s[:-1])
    with pytest.raises(ValueError, match="metric must be"):
        Fairness(metric="parity").bind(model, Xv, yv, sensitive_features=s)
    module, loss, X, y, Xv3, yv3 = make_case("mlp_tanh_ce")  # three classes
    with pytest.raises(ValueError, match="binary target"):
        Fairness().bind(as_torch_model(module, loss=loss), Xv3, yv3,
                        sensitive_features=_groups(len(yv3), 2))


def test_fgsm_is_one_signed_gradient_step():
    model, Xv, yv = _binary_model()
    adv = Robustness(attack="fgsm", epsilon=0.2).perturb(model, Xv, yv)
    x = Xv.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model.module(x), yv, reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    assert rel_err(adv, Xv + 0.2 * g.sign()) <= 1e-12


def test_pgd_stays_in_the_ball_and_beats_fgsm():
    model, Xv, yv = _binary_model()
    clean = Utility().bind(model, Xv, yv).value()
    fgsm = Robustness(attack="fgsm", epsilon=0.3).bind(model, Xv, yv)
    pgd_obj = Robustness(attack="pgd", epsilon=0.3, steps=20)
    pgd = pgd_obj.bind(model, Xv, yv)
    assert float((pgd.X - Xv).abs().max()) <= 0.3 + 1e-12
    assert clean < fgsm.value() <= pgd.value() + 1e-9
    with pytest.raises(ValueError, match="attack"):
        Robustness(attack="cw").bind(model, Xv, yv)


# --- pos_label, string labels and the groups' warnings (issue 16, item 6) ---


def _string_lr(seed=0, n=400):
    """A LogisticRegression fitted on labels "no"/"yes", and groups tied to y."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 3))
    y = np.where(X[:, 0] + rng.normal(0, 0.5, n) > 0, "yes", "no")
    s = np.where(rng.uniform(size=n) < 0.5 + 0.3 * (y == "yes"), "a", "b")
    return LogisticRegression().fit(X, y), X, y, s


@pytest.mark.parametrize("metric", ["demographic_parity", "equal_opportunity", "equalized_odds"])
def test_fairness_on_string_labels_defaults_to_the_greater_class(metric):
    est, X, y, s = _string_lr()
    model = as_torch_model(est)
    p = est.predict_proba(X)  # columns in classes_ order: "no", "yes"
    for pos_label, col in [(None, 1), ("yes", 1), ("no", 0)]:
        value = Fairness(metric=metric, pos_label=pos_label).bind(
            model, X, y, sensitive_features=s
        ).value()
        pos = "yes" if col == 1 else "no"
        ref = _soft_gap_reference(p[:, col], (y == pos).astype(int), s, metric)
        assert value == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("bad", [1, "maybe"])
def test_fairness_pos_label_not_a_class_raises_naming_the_classes(bad):
    est, X, y, s = _string_lr()
    with pytest.raises(ValueError) as info:
        Fairness(pos_label=bad).bind(as_torch_model(est), X, y, sensitive_features=s)
    assert str(info.value) == (
        f"pos_label={bad!r} is not one of the model's classes ['no', 'yes']."
    )
    model, Xv, yv = _binary_model()  # a bare module: class indices 0 and 1
    with pytest.raises(
        ValueError,
        match=r"pos_label='yes' is not one of the class indices of the model's "
        r"outputs \[0, 1\]",
    ):
        Fairness(pos_label="yes").bind(model, Xv, yv, sensitive_features=_groups(60, 2))


def test_bind_warns_naming_each_small_group_and_its_count():
    est, X, y, s = _string_lr(n=400)
    model = as_torch_model(est)
    s = s.astype(object)
    s[:7] = "tiny"  # 7 validation rows, whatever their labels
    n_pos = int(np.sum(y[:7] == "yes"))
    with pytest.warns(UserWarning) as record:
        Fairness().bind(model, X, y, sensitive_features=s)
    assert len(record) == 1
    assert str(record[0].message).startswith(
        "Groups of sensitive_features with fewer than 20 validation rows: 'tiny' has 7."
    )
    with pytest.warns(UserWarning) as record:
        Fairness(metric="equalized_odds").bind(model, X, y, sensitive_features=s)
    assert len(record) == 1
    assert (
        f"'tiny' has {n_pos} with a positive label and {7 - n_pos} with a negative "
        "label." in str(record[0].message)
    )


def test_bind_warns_once_for_a_float_feature_and_not_for_normal_groups():
    est, X, y, s = _string_lr()
    model = as_torch_model(est)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for metric in ("demographic_parity", "equal_opportunity", "equalized_odds"):
            Fairness(metric=metric).bind(model, X, y, sensitive_features=s)
    income = np.round(np.random.RandomState(0).lognormal(3, 1, len(y)), 2)
    with pytest.warns(UserWarning) as record:
        Fairness().bind(model, X, y, sensitive_features=income)
    floats = [r for r in record if "float dtype" in str(r.message)]
    assert len(floats) == 1
    assert str(floats[0].message).startswith(
        f"sensitive_features_val has a float dtype (float64) and "
        f"{len(np.unique(income))} groups"
    )


def _race_like(seed=0, n=800):
    """Five groups, one of them rare (about 1%), as race on Adult."""
    rng = np.random.RandomState(seed)
    race = rng.choice(
        ["White", "Black", "Asian", "Amer-Indian", "Other"],
        n,
        p=[0.62, 0.2, 0.1, 0.01, 0.07],
    )
    X = np.c_[rng.normal(size=(n, 3)), (race == "White").astype(float)]
    y = np.where(X[:, 0] + X[:, 3] + rng.normal(0, 0.7, n) > 0.5, "yes", "no")
    return X, y, race


def test_filter_warns_once_naming_small_validation_groups_and_their_counts():
    from sklearn.linear_model import LogisticRegression

    from skinfluence import InfluenceFilter

    X, y, race = _race_like()
    flt = InfluenceFilter(
        LogisticRegression(), objective="fairness", prune_ratio=0.1, random_state=0
    )
    with pytest.warns(UserWarning) as record:
        flt.fit(X, y, sensitive_features=race)
    assert flt.rounds_ == 3  # scored three times, warned once
    small = [r for r in record if "fewer than 20 validation rows" in str(r.message)]
    assert len(small) == 1
    names, counts = np.unique(race[flt.validation_indices_], return_counts=True)
    expected = ", ".join(
        f"{str(name)!r} has {count}"
        for name, count in zip(names, counts, strict=True)
        if count < 20
    )
    assert expected  # the rare group is under 20 rows
    assert f"fewer than 20 validation rows: {expected}. The demographic_parity" in str(
        small[0].message
    )
    # a string pos_label that is not a class: the error names the classes
    with pytest.raises(
        ValueError, match=r"pos_label=1 is not one of the classes of y \['no', 'yes'\]"
    ):
        InfluenceFilter(LogisticRegression(), objective=Fairness(pos_label=1)).fit(
            X, y, sensitive_features=race
        )


def test_filter_warns_once_for_a_float_feature_and_not_for_normal_groups():
    from sklearn.linear_model import LogisticRegression

    from skinfluence import InfluenceFilter

    X, y, race = _race_like()
    big = np.where(race == "White", "White", "other")  # two large groups
    flt = InfluenceFilter(
        LogisticRegression(), objective="fairness", prune_ratio=0.1, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        flt.fit(X, y, sensitive_features=big)
    age = np.random.RandomState(1).uniform(18, 90, len(y))
    with pytest.warns(UserWarning) as record:
        flt.fit(X, y, sensitive_features=age)  # one group per row
    floats = [r for r in record if "float dtype" in str(r.message)]
    assert len(floats) == 1
    assert str(floats[0].message).startswith(
        f"sensitive_features has a float dtype (float64) and {len(np.unique(age))} "
        "groups"
    )
    # and the small groups (all of them): one warning, the first 20 named
    small = [r for r in record if "fewer than 20" in str(r.message)]
    assert len(small) == 1
    n_val = len(flt.validation_indices_)
    assert f" has 1 and {n_val - 20} more groups." in str(small[0].message)
