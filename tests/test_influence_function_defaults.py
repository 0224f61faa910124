"""InfluenceFunction's damping: relative to the curvature's scale, and "auto".

Every number is checked against a dense reference built here with
``torch.func`` on the module itself (``J^T H_out J`` from per-row Jacobians,
per-row gradients by ``vmap(grad)``), or a closed form.
"""

import warnings

import numpy as np
import pytest
import torch
from _brute import rel_err
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap
from torch.nn import functional as F

from skinfluence import InfluenceFilter, InfluenceFunction, compute_influence
from skinfluence.methods import CGConvergenceError
from skinfluence.models import as_torch_model
from skinfluence.objectives import Utility

AUTO = 3.0  # the first damping damping="auto" tries on a network (documented)
AUTO_LINEAR = 0.01  # ... and on a model linear in its parameters


# ---------------------------------------------------------------- problems
def _relu_net(*, n=200, d=20, hidden=16, big=100.0, seed=0):
    """A small ReLU net on raw-scale features (German credit's amounts).

    Three of the features are 100 times larger than the rest, as a credit
    amount in currency units is next to one-hot codes: the curvature is
    large, so an absolute damping of 1e-3 (the former default) is tiny next
    to it and CG does not reach tol=1e-6 in 200 iterations.
    """
    X, y = make_classification(
        n_samples=n + 100, n_features=d, n_informative=4, random_state=seed
    )
    X[:, :3] *= big
    X, y = torch.tensor(X), torch.tensor(y)
    torch.manual_seed(seed)
    module = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    module = module.double()
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    for _ in range(200):  # full batch: deterministic
        opt.zero_grad()
        F.cross_entropy(module(X[:n]), y[:n]).backward()
        opt.step()
    model = as_torch_model(module, loss=nn.CrossEntropyLoss())
    return module, model, X[:n], y[:n], X[n:], y[n:]


@pytest.fixture(scope="module")
def german_like():
    return _relu_net()


@pytest.fixture(scope="module")
def tiny():
    """P = 8 x 10 + 8 + 2 x 8 + 2 = 106 <= 256: the trace is summed exactly."""
    return _relu_net(n=120, d=10, hidden=8, big=1.0, seed=1)


# -------------------------------------------------------- dense references
def _flat(params):
    return torch.cat([p.reshape(-1) for p in params.values()])


def _dense_ggn(module, X):
    """``mean_i J_i^T (diag p_i - p_i p_i^T) J_i`` from per-row Jacobians."""
    params = {k: p.detach() for k, p in module.named_parameters()}

    def logits(p, x):
        return functional_call(module, p, (x[None],))[0]

    jac = vmap(jacrev(logits), in_dims=(None, 0))(params, X)
    J = torch.cat([jac[k].reshape(len(X), 2, -1) for k in params], -1)  # (n, 2, P)
    p = torch.softmax(module(X), -1).detach()
    H = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return torch.einsum("iap,iab,ibq->pq", J, H, J) / len(X)


def _dense_scores(module, X, y, Xv, yv, lam):
    """``g_i^T (G + lam I)^-1 grad J``, every factor computed here."""
    params = {k: p.detach() for k, p in module.named_parameters()}

    def loss(p, x, t):
        return F.cross_entropy(functional_call(module, p, (x[None],)), t[None])

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, X, y)
    G_rows = torch.cat([grads[k].reshape(len(X), -1) for k in params], -1)
    gJ = grad(lambda p: F.cross_entropy(functional_call(module, p, (Xv,)), yv))(params)
    G = _dense_ggn(module, X)
    x = torch.linalg.solve(G + lam * torch.eye(len(G), dtype=G.dtype), _flat(gJ))
    return G_rows @ x, G


def _score(method, problem):
    module, model, X, y, Xv, yv = problem
    J = Utility().bind(model, Xv, yv)
    return method.score(model, J, X, y, batch_size=256)


# ------------------------------------------------------------------- tests
def test_relative_damping_is_damping_times_trace_over_p(tiny):
    module, model, X, y, Xv, yv = tiny
    method = InfluenceFunction(solver="exact", damping=0.3)
    got = _score(method, tiny)
    G = _dense_ggn(module, X)
    P = len(G)
    assert P == 106  # exact diagonal below 257 parameters
    assert method.curvature_scale_ == pytest.approx(float(G.trace()) / P, rel=1e-10)
    expected, _ = _dense_scores(module, X, y, Xv, yv, 0.3 * float(G.trace()) / P)
    assert rel_err(got, expected) <= 1e-8
    assert method.damping_ == 0.3


def test_hessian_curvature_is_damped_on_the_same_scale():
    """Logistic regression: the Hessian (closed form) is the GGN; lambda is
    damping x trace(H) / P with H the closed-form Hessian incl. the L2 term."""
    X, y = make_classification(n_samples=150, n_features=5, random_state=0)
    C, Xt, yt, Xv, yv = 0.5, X[:100], y[:100], X[100:], y[100:]
    clf = LogisticRegression(C=C, tol=1e-12, max_iter=1000).fit(Xt, yt)
    n = len(Xt)
    Z, Zv = np.hstack([Xt, np.ones((n, 1))]), np.hstack([Xv, np.ones((50, 1))])
    p, pv = clf.predict_proba(Xt)[:, 1], clf.predict_proba(Xv)[:, 1]
    H = (Z * (p * (1 - p))[:, None]).T @ Z / n
    H[:-1, :-1] += np.eye(5) / (C * n)
    lam = 2.0 * np.trace(H) / len(H)
    grad_J = Zv.T @ (pv - yv) / len(yv)
    expected = (Z * (p - yt)[:, None]) @ np.linalg.solve(H + lam * np.eye(6), grad_J)
    for curvature in ("hessian", "ggn"):
        method = InfluenceFunction(damping=2.0, curvature=curvature, tol=1e-12)
        got = compute_influence(clf, Xt, yt, Xv, yv, method=method)
        assert rel_err(got, expected) <= 1e-8, curvature


def test_hutchinson_estimate_above_256_parameters(german_like):
    """P = 370: the seeded Rademacher estimate, checked probe by probe."""
    module, model, X, y, Xv, yv = german_like
    method = InfluenceFunction(solver="cg", damping=1.0)
    _score(method, german_like)
    G = _dense_ggn(module, X)
    P = len(G)
    assert P == 370
    gen = torch.Generator().manual_seed(0)
    shapes = [p.shape for p in module.parameters()]
    probes = [
        torch.cat(
            [
                (2 * torch.randint(0, 2, s, generator=gen) - 1).reshape(-1)
                for s in shapes
            ]
        ).double()
        for _ in range(32)
    ]
    estimate = np.mean([float(z @ G @ z) for z in probes]) / P
    assert method.curvature_scale_ == pytest.approx(estimate, rel=1e-10)
    # and the estimate is near the trace (measured: 6% off)
    assert abs(method.curvature_scale_ / (float(G.trace()) / P) - 1) <= 0.25


def test_the_old_default_fails_where_auto_scores(german_like):
    module, model, X, y, Xv, yv = german_like
    scale = InfluenceFunction(damping=1.0)
    _score(scale, german_like)
    # the former default, an absolute 1e-3, given explicitly: CG falls short
    old = InfluenceFunction(damping=1e-3 / scale.curvature_scale_)
    with pytest.raises(CGConvergenceError, match="200 iterations") as err:
        _score(old, german_like)
    assert err.value.info.stop == "max_iter" and err.value.info.residual > 1e-6
    # the default scores (no warning: its first damping converges)
    method = InfluenceFunction()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _score(method, german_like)
    assert method.damping == "auto" and method.damping_ == AUTO
    assert method.cg_info_.converged and method.cg_info_.n_iter <= 200
    lam = AUTO * method.curvature_scale_
    expected, _ = _dense_scores(module, X, y, Xv, yv, lam)
    assert rel_err(got, expected) <= 1e-4  # CG's tol 1e-6 on the solve


def test_auto_raises_the_damping_with_a_warning_that_says_the_numbers(german_like):
    module, model, X, y, Xv, yv = german_like
    method = InfluenceFunction(max_iter=15)  # damping not given: "auto"
    with pytest.warns(ConvergenceWarning) as record:
        got = _score(method, german_like)
    msg = str(record[0].message)
    first = method.cg_info_
    assert method.damping_ > AUTO and first.converged
    # names every damping tried, with its iterations and residual, and the last
    assert f"damping {AUTO:g} (lambda" in msg and "15 iterations" in msg
    assert "residual" in msg and f"damping {method.damping_:g}" in msg
    expected, _ = _dense_scores(
        module, X, y, Xv, yv, method.damping_ * method.curvature_scale_
    )
    assert rel_err(got, expected) <= 1e-4


def test_an_explicit_damping_keeps_on_unconverged(german_like):
    with pytest.raises(CGConvergenceError, match="15 iterations"):
        _score(InfluenceFunction(damping=AUTO, max_iter=15), german_like)
    method = InfluenceFunction(damping=AUTO, max_iter=15, on_unconverged="warn")
    with pytest.warns(RuntimeWarning, match="did not converge"):
        _score(method, german_like)
    assert method.damping_ == AUTO and not method.cg_info_.converged


def test_auto_gives_up_after_four_raises(german_like):
    method = InfluenceFunction(max_iter=1)
    with pytest.raises(CGConvergenceError, match="damping='auto'") as err:
        _score(method, german_like)
    assert method.damping_ == pytest.approx(AUTO * 1e4)
    for d in (AUTO, AUTO * 10, AUTO * 100, AUTO * 1000):
        assert f"damping {d:g} (lambda" in str(err.value)


def test_auto_is_a_parameter_value_that_clones_and_searches():
    method = InfluenceFunction()
    assert method.get_params()["damping"] == "auto"
    assert clone(method).damping == "auto"
    assert clone(method.set_params(damping=0.1)).damping == 0.1
    X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    flt = InfluenceFilter(
        LogisticRegression(), method=InfluenceFunction(), prune_ratio=0.1,
        random_state=0,
    )  # fmt: skip
    search = GridSearchCV(flt, {"method__damping": ["auto", 0.1]}, cv=2).fit(X, y)
    assert list(search.cv_results_["param_method__damping"]) == ["auto", 0.1]
    assert search.best_estimator_.method_.damping in ("auto", 0.1)


@pytest.mark.parametrize("damping", ["big", -1.0])
def test_a_bad_damping_fails_before_any_work(damping, tiny):
    with pytest.raises(ValueError, match="damping"):
        _score(InfluenceFunction(damping=damping), tiny)


def test_a_fitted_filter_carries_the_solve_on_method_():
    """``method_.cg_info_`` (as documented): the record of the scoring solve.

    One round of a LogisticRegression: the scored model is the one fitted
    on the training rows, so its closed-form Hessian gives the scale.
    """
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    flt = InfluenceFilter(
        LogisticRegression(), method="influence_function", prune_ratio=0.1,
        random_state=0,
    ).fit(X, y)  # fmt: skip
    method = flt.method_
    assert method.cg_info_.converged and method.cg_info_.stop == "tol"
    assert method.damping_ == AUTO_LINEAR  # a model linear in its parameters
    train = np.setdiff1d(np.arange(len(y)), flt.validation_indices_)
    clf = LogisticRegression().fit(X[train], y[train])
    n = len(train)
    Z = np.hstack([X[train], np.ones((n, 1))])
    p = clf.predict_proba(X[train])[:, 1]
    H = (Z * (p * (1 - p))[:, None]).T @ Z / n
    H[:-1, :-1] += np.eye(5) / n  # C = 1
    assert method.curvature_scale_ == pytest.approx(np.trace(H) / 6, rel=1e-5)
    # the unfitted parameter is untouched, and a clone carries no record
    assert flt.method == "influence_function"
    assert not hasattr(clone(method), "cg_info_")

