"""Methods against brute force, captum, closed forms and refits."""

import numpy as np
import pytest
import torch
from _brute import mean_loss_grad, per_row_grads, rel_err
from _captum_ref import captum_self_influence, captum_tracin_aggregate
from cases import CASES, make_case
from scipy.stats import spearmanr
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import (
    IPEnsemble,
    InfluenceFunction,
    SelfInfluence,
    compute_influence,
)
from skinfluence.callbacks import TracInCheckpoints
from skinfluence.methods import METHODS, Method
from skinfluence.models import as_torch_model


def _with_checkpoints(name, n_ck=3, seed=0):
    module, loss, X, y, Xv, yv = make_case(name, seed=seed)
    g = torch.Generator().manual_seed(seed + 10)
    cks = [
        ({k: v.detach() + 0.2 * torch.randn(v.shape, generator=g, dtype=v.dtype)
          for k, v in module.named_parameters()}, 0.05 * (t + 1))
        for t in range(n_ck)
    ]
    return as_torch_model(module, loss=loss, checkpoints=cks), X, y, Xv, yv


@pytest.mark.parametrize("name", sorted(CASES))
def test_ip_and_tracin_equal_brute_force(name):
    model, X, y, Xv, yv = _with_checkpoints(name)
    ip = compute_influence(model, X, y, Xv, yv, method="ip", batch_size=16)
    expected = per_row_grads(model, model.params, X, y) @ mean_loss_grad(model, model.params, Xv, yv)
    assert rel_err(ip, expected) <= 1e-10
    tracin = compute_influence(model, X, y, Xv, yv, method="tracin", batch_size=16)
    expected = sum(
        lr * per_row_grads(model, p, X, y) @ mean_loss_grad(model, p, Xv, yv)
        for p, lr in model.checkpoint_params()
    )
    assert rel_err(tracin, expected) <= 1e-10
    si = compute_influence(model, X, y, method="self_influence", batch_size=16)
    expected = -sum(lr * per_row_grads(model, p, X, y).pow(2).sum(1) for p, lr in model.checkpoint_params())
    assert rel_err(si, expected) <= 1e-10


def _skorch_net(criterion, seed=0):
    X, y = make_classification(n_samples=150, n_features=6, n_informative=4, random_state=seed)
    Xv, yv = X[100:], y[100:]
    X, y = X[:100], y[:100]
    torch.manual_seed(seed)
    layers = [nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 2)]
    kw = {}
    if criterion == "ce":
        kw["criterion"] = nn.CrossEntropyLoss
    else:
        layers.append(nn.Softmax(dim=-1))
    net = NeuralNetClassifier(
        nn.Sequential(*layers).double(), max_epochs=4, lr=0.2, batch_size=20,
        train_split=None, verbose=0, callbacks=[("ck", TracInCheckpoints())], **kw,
    ).fit(X, y)
    return net, X, y, Xv, yv


@pytest.mark.parametrize("criterion", ["ce", "nll"])
def test_tracin_ip_and_self_influence_equal_captum(criterion):
    net, X, y, Xv, yv = _skorch_net(criterion)
    loss = "cross_entropy" if criterion == "ce" else "nll_of_probs"
    cks = [(c.params, c.learning_rate) for c in as_torch_model(net).checkpoints]
    assert len(cks) == 4
    Xt, yt, Xvt, yvt = map(torch.as_tensor, (X, y, Xv, yv))
    ours = compute_influence(net, X, y, Xv, yv, method="tracin", batch_size=32)
    theirs = captum_tracin_aggregate(net.module_, cks, Xt, yt, Xvt, yvt, loss=loss, batch_size=32)
    assert rel_err(ours, theirs) <= 1e-8
    # ip is TracIn on the single checkpoint (final parameters, lr 1)
    final = [({k: v.detach() for k, v in net.module_.named_parameters()}, 1.0)]
    ours = compute_influence(net, X, y, Xv, yv, method="ip")
    theirs = captum_tracin_aggregate(net.module_, final, Xt, yt, Xvt, yvt, loss=loss, batch_size=32)
    assert rel_err(ours, theirs) <= 1e-8
    ours = compute_influence(net, X, y, method="self_influence")
    theirs = captum_self_influence(net.module_, cks, Xt, yt, loss=loss, batch_size=32)
    assert rel_err(ours, -theirs) <= 1e-8
    ours = compute_influence(net, X, y, method=SelfInfluence(use_checkpoints=False))
    theirs = captum_self_influence(net.module_, final, Xt, yt, loss=loss, batch_size=32)
    assert rel_err(ours, -theirs) <= 1e-8


def _logreg_problem(seed=0, n=80, C=1.0):
    X, y = make_classification(n_samples=n + (100 if n > 100 else 40), n_features=5, n_informative=4,
                               n_redundant=0, flip_y=0.1, random_state=seed)
    Xv, yv, X, y = X[n:], y[n:], X[:n], y[:n]
    clf = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    return clf, X, y, Xv, yv


@pytest.mark.parametrize("damping", [0.0, 0.1])
def test_influence_function_equals_logistic_closed_form(damping):
    C = 0.5
    clf, X, y, Xv, yv = _logreg_problem(C=C)
    n = len(X)
    Z, Zv = np.hstack([X, np.ones((n, 1))]), np.hstack([Xv, np.ones((len(Xv), 1))])
    p, pv = clf.predict_proba(X)[:, 1], clf.predict_proba(Xv)[:, 1]
    H = (Z * (p * (1 - p))[:, None]).T @ Z / n
    H[:-1, :-1] += np.eye(X.shape[1]) / (C * n)
    grad_J = Zv.T @ (pv - yv) / len(yv)
    G = Z * (p - y)[:, None]  # g_i = x_i (p_i - y_i)
    lam = damping * np.trace(H) / len(H)  # damping is relative to trace / P
    expected = G @ np.linalg.solve(H + lam * np.eye(len(H)), grad_J)
    for solver in ["exact", "cg"]:
        method = InfluenceFunction(solver=solver, damping=damping, tol=1e-12)
        got = compute_influence(clf, X, y, Xv, yv, method=method)
        assert rel_err(got, expected) <= 1e-8, solver


def test_influence_function_predicts_the_effect_of_refitting():
    """Removing row i changes J by about s_i / n: compare with 200 real refits."""
    clf, X, y, Xv, yv = _logreg_problem(seed=0, n=200)
    n = len(X)

    def J(model):
        pv = model.predict_proba(Xv)[np.arange(len(yv)), yv]
        return -np.log(pv).mean()

    base = J(clf)
    actual = np.array([
        J(LogisticRegression(tol=1e-12, max_iter=10_000).fit(np.delete(X, i, 0), np.delete(y, i)))
        - base
        for i in range(n)
    ])
    predicted = compute_influence(clf, X, y, Xv, yv, method=InfluenceFunction(solver="exact", damping=0.0)) / n
    rho = spearmanr(predicted, actual).statistic
    assert rho >= 0.9
    # first order: also close in value for the typical row (measured: 0.08)
    assert np.median(np.abs(predicted - actual) / np.abs(actual)) <= 0.2


def test_ip_ensemble_without_dropout_equals_ip_and_is_seeded():
    model, X, y, Xv, yv = _with_checkpoints("mlp_tanh_ce")
    ip = compute_influence(model, X, y, Xv, yv, method="ip")
    ens0 = compute_influence(model, X, y, Xv, yv, method=IPEnsemble(n_members=4, max_dropout=0.0))
    np.testing.assert_allclose(ens0, ip, rtol=1e-12, atol=1e-15)
    one = compute_influence(model, X, y, Xv, yv, method=IPEnsemble(n_members=1), random_state=3)
    np.testing.assert_allclose(one, ip, rtol=1e-12, atol=1e-15)
    method = IPEnsemble(n_members=5, max_dropout=0.3)
    a = compute_influence(model, X, y, Xv, yv, method=method, random_state=7)
    b = compute_influence(model, X, y, Xv, yv, method=method, random_state=7)
    c = compute_influence(model, X, y, Xv, yv, method=method, random_state=8)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-6


def test_ip_ensemble_is_the_mean_over_dropout_members():
    model, X, y, Xv, yv = _with_checkpoints("mlp_tanh_ce")
    method = IPEnsemble(n_members=4, max_dropout=0.3)
    members = list(method.members(model.params, 5))
    assert members[0] is model.params
    for m in members[1:]:
        kept = torch.cat([(m[k] != 0).reshape(-1) for k in m])
        ratios = torch.cat([(m[k] / model.params[k])[m[k] != 0].reshape(-1) for k in m])
        # one rescaling 1 / (1 - p_k) with p_k <= max_dropout, and some entries dropped
        assert torch.allclose(ratios, ratios[0].expand_as(ratios))
        p_k = 1 - 1 / float(ratios[0])
        assert 0 <= p_k <= 0.3
        assert kept.float().mean() == pytest.approx(1 - p_k, abs=0.2)
    expected = sum(
        per_row_grads(model, m, X, y) @ mean_loss_grad(model, m, Xv, yv) for m in members
    ) / 4
    got = compute_influence(model, X, y, Xv, yv, method=method, random_state=5)
    assert rel_err(got, expected) <= 1e-10


def test_loss_and_random_baselines():
    clf, X, y, Xv, yv = _logreg_problem()
    got = compute_influence(clf, X, y, method="loss")
    np.testing.assert_allclose(got, np.log(clf.predict_proba(X)[np.arange(len(y)), y]), rtol=1e-10)
    got = compute_influence(clf, X, y, method="random", random_state=4)
    np.testing.assert_array_equal(got, np.random.RandomState(4).uniform(size=len(y)))


@METHODS.register
class _NeedsCheckpoints(Method):
    """A method that needs checkpoints, under a key of its own."""

    _key = "test_needs_checkpoints"
    needs_checkpoints = True

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        self.check_checkpoints(model)
        return torch.zeros(len(X))


@pytest.mark.parametrize("method", ["tracin", "test_needs_checkpoints"])
def test_missing_checkpoints_error_names_the_method_called(method):
    clf, X, y, Xv, yv = _logreg_problem()
    others = {"tracin", "test_needs_checkpoints"} - {method}
    for call in (
        lambda: compute_influence(clf, X, y, Xv, yv, method=method),
        lambda: METHODS.resolve(method).score(
            as_torch_model(clf), None, X, y, batch_size=8
        ),
    ):
        with pytest.raises(ValueError, match="TracInCheckpoints") as err:
            call()
        assert f"method='{method}' needs training checkpoints" in str(err.value)
        assert not any(other in str(err.value) for other in others)
