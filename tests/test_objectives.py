"""Objectives: gradients against finite differences, gaps against fairlearn."""

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
