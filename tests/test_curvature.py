"""Curvature operators (Hessian, GGN) and their inverses against dense brute force."""

import numpy as np
import pytest
import torch
from _brute import flat_grad, rel_err
from cases import CASES, make_case
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import InfluenceFunction, compute_influence
from skinfluence import _tree as tree
from skinfluence import kernels as K
from skinfluence.methods import CGConvergenceError
from skinfluence.models import as_torch_model
from skinfluence.objectives import Utility

# one torch thread: tests/conftest.py pins it for the session


def _model(name, weight_decay=0.0, **kw):
    module, loss, X, y, Xv, yv = make_case(name, **kw)
    return as_torch_model(module, loss=loss, weight_decay=weight_decay), X, y, Xv, yv


def _random_like(params, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in params.items()}


# -------------------------------------------------------- dense references
def _row_jacobian(fn, params, n_out):
    """Rows d fn(params)[c] / d params, one autograd call per output."""
    return torch.stack([flat_grad(lambda p, c=c: fn(p).reshape(-1)[c], params) for c in range(n_out)])


def _softmax_hessian(logits):
    p = torch.softmax(logits, -1)
    return torch.diag(p) - torch.outer(p, p)


def dense_ggn(model, X, y, split):
    """sum_i J_i^T H_i J_i / n + L2, with J_i and H_i built row by row here.

    ``split`` is how the test reads the model: "logits" (H = diag p - p p^T of
    the softmax), "binary" (one logit, H = p (1 - p)), "log_proba" (outputs
    are log-probabilities: H = diag p - p p^T with p = exp(outputs)).
    """
    params = model.params
    P = tree.n_params(params)
    total = torch.zeros(P, P, dtype=torch.float64)
    for i in range(len(X)):
        xi = X[i : i + 1]
        out = model.outputs(params, xi).detach().reshape(-1)

        def f(p, xi=xi):
            return model.outputs(p, xi)

        J = _row_jacobian(f, params, out.numel())
        if split == "binary":
            q = torch.sigmoid(out)
            H = (q * (1 - q)).reshape(1, 1)
        else:  # of log-probabilities too: their softmax is their exp
            H = _softmax_hessian(out)
        total += J.T @ H @ J
    total /= len(X)
    lam = model.l2(len(X))
    diag = torch.cat([torch.full((p.numel(),), lam.get(k, 0.0), dtype=torch.float64) for k, p in params.items()])
    return total + torch.diag(diag)


SPLIT = {"binary_bce": "binary", "mlp_logsoftmax_nll": "log_proba"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ggn_products_equal_dense_brute_force(name):
    model, X, y, _, _ = _model(name, weight_decay=0.03)
    expected = dense_ggn(model, X, y, SPLIT.get(name, "logits"))
    for cache_bytes in (2**30, 0):  # kept graphs and linearised each time
        G = K.GGN(model, model.params, X, y, 11, cache_bytes=cache_bytes)
        for seed in range(2):
            v = _random_like(model.params, seed)
            assert rel_err(tree.flatten(G(v)), expected @ tree.flatten(v)) <= 1e-8
        assert rel_err(K.dense_matrix(G), expected) <= 1e-8
    assert len(K.GGN(model, model.params, X, y, 11, cache_bytes=0)._cache) == 0


def test_ggn_of_probabilities_is_the_fisher_of_the_log_probabilities():
    """A skorch net ending in softmax (NLLLoss on probabilities)."""
    X, y = make_classification(n_samples=30, n_features=4, n_informative=3, n_redundant=0, n_classes=3,
                               random_state=0)
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3), nn.Softmax(dim=-1)).double(),
        max_epochs=2, lr=0.1, train_split=None, verbose=0,
    ).fit(X, y)
    model = as_torch_model(net)
    assert model.output == "proba"
    Xt, yt = model.prepare_X(X), model.prepare_y(y)
    # the GGN of the log-probabilities with the softmax's Hessian (the Fisher)
    params = model.params
    P = tree.n_params(params)
    expected = torch.zeros(P, P, dtype=torch.float64)
    for i in range(len(Xt)):
        xi = Xt[i : i + 1]

        def logp(p, xi=xi):
            return torch.log(model.outputs(p, xi))

        out = logp(params).detach().reshape(-1)
        J = _row_jacobian(logp, params, 3)
        expected += J.T @ _softmax_hessian(out) @ J
    expected /= len(Xt)
    got = K.dense_matrix(K.GGN(model, params, Xt, yt, 7))
    assert rel_err(got, expected) <= 1e-8


def _probabilities(coef, intercept, X):
    """p_i of the positive class (binary, shape (n, 1)) or of every class (softmax)."""
    logits = X @ coef.T + intercept  # (n, k)
    if logits.shape[1] == 1:
        return 1 / (1 + np.exp(-logits))
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def _logistic_curvature(coef, intercept, X, C, n_rows=None):
    """scikit-learn's logistic objective / (C n), its Hessian written out in numpy.

    ``X~^T D X~ / n + I / (C n_rows)`` on the weights (the intercept is not
    penalised), ``X~ = [X, 1]``; ``D_i = p_i (1 - p_i)`` (binary) or
    ``diag(p_i) - p_i p_i^T`` (softmax), in the order of the parameters:
    the weights row by row, then the intercepts.
    """
    n, d = X.shape
    n_rows = n if n_rows is None else n_rows
    p = _probabilities(coef, intercept, X)
    k = p.shape[1]
    if k == 1:
        D = (p * (1 - p))[:, :, None]
    else:
        D = p[:, :, None] * np.eye(k) - p[:, :, None] * p[:, None, :]
    Xa = np.hstack([X, np.ones((n, 1))])
    H = np.einsum("iab,ij,il->ajbl", D, Xa, Xa).reshape(k * (d + 1), k * (d + 1)) / n
    order = [a * (d + 1) + j for a in range(k) for j in range(d)]
    order += [a * (d + 1) + d for a in range(k)]
    H = H[np.ix_(order, order)]
    return H + np.diag(np.r_[np.full(k * d, 1 / (C * n_rows)), np.zeros(k)])


def _logistic_row_gradients(coef, intercept, X, y):
    """Per-row log-loss gradients ``(p_i - y_i) x~_i``, (n, P) in the parameters' order."""
    p = _probabilities(coef, intercept, X)
    r = p - (y[:, None] if p.shape[1] == 1 else np.eye(p.shape[1])[y])
    return np.hstack([(r[:, :, None] * X[:, None, :]).reshape(len(X), -1), r])


@pytest.mark.parametrize("n_classes", [2, 3])
def test_ggn_equals_the_hessian_on_logistic_regression(n_classes):
    X, y = make_classification(n_samples=90, n_features=5, n_informative=4, n_redundant=0,
                               n_classes=n_classes, flip_y=0.1, random_state=0)
    Xv, yv, X, y = X[60:], y[60:], X[:60], y[:60]
    clf = LogisticRegression(C=0.7, tol=1e-12, max_iter=10_000).fit(X, y)
    model = as_torch_model(clf)
    Xt, yt = model.prepare_X(X), model.prepare_y(y)
    expected = _logistic_curvature(clf.coef_, clf.intercept_, X, C=0.7)
    H = K.hessian_matrix(model, model.params, Xt, yt, 16)
    G = K.dense_matrix(K.GGN(model, model.params, Xt, yt, 16))
    assert rel_err(H, torch.as_tensor(expected)) <= 1e-10
    assert rel_err(G, torch.as_tensor(expected)) <= 1e-10
    # the scores g_i^T (H + lambda I)^-1 grad J, lambda = 0.01 trace(H) / P
    lam = 0.01 * np.trace(expected) / len(expected)
    grad_J = _logistic_row_gradients(clf.coef_, clf.intercept_, Xv, yv).mean(0)
    g = _logistic_row_gradients(clf.coef_, clf.intercept_, X, y)
    closed_form = g @ np.linalg.solve(expected + lam * np.eye(len(expected)), grad_J)
    for solver in ["exact", "cg"]:
        for c in ["ggn", "hessian"]:
            scores = compute_influence(clf, X, y, Xv, yv, method=InfluenceFunction(
                solver=solver, curvature=c, damping=0.01, tol=1e-12, max_iter=500))
            assert rel_err(scores, closed_form) <= 1e-8, (solver, c)


# ----------------------------------------------------------------- solvers
def _untrained_tanh_net():
    """An untrained tanh MLP whose damped Hessian is indefinite (checked)."""
    module, loss, X, y, Xv, yv = make_case("mlp_tanh_ce", n=60, seed=1)
    return as_torch_model(module, loss=loss), X, y, Xv, yv


def test_cg_on_ggn_converges_where_the_hessian_meets_negative_curvature():
    model, X, y, Xv, yv = _untrained_tanh_net()
    damping = 1e-3
    H = K.hessian_matrix(model, model.params, X, y, 1000)
    assert torch.linalg.eigvalsh(H).min() < -10 * damping  # indefinite: a saddle
    b = K.chunked_gradient(lambda p, Xb, yb: model.row_loss(p, Xb, yb).mean(), model.params, [(Xv, yv)])
    # the Hessian: CG stops at a direction of negative curvature
    inv = K.CGInverse(K.Damped(K.Hessian(model, model.params, X, y, 16), damping), max_iter=500)
    inv(b)
    assert inv.info_.stop == "non_positive_curvature" and not inv.info_.converged
    # the GGN: positive semi-definite, CG reaches tol, and the dense solve agrees
    G = dense_ggn(model, X, y, "logits") + damping * torch.eye(len(H), dtype=H.dtype)
    assert torch.linalg.eigvalsh(G).min() > 0
    inv = K.CGInverse(K.Damped(K.GGN(model, model.params, X, y, 16), damping), tol=1e-10, max_iter=2000)
    x = inv(b)
    assert inv.info_.converged and inv.info_.stop == "tol"
    assert inv.info_.residual <= 1e-10
    assert rel_err(tree.flatten(x), torch.linalg.solve(G, tree.flatten(b))) <= 1e-6
    # through the method: the Hessian raises (or warns), the GGN scores
    for curvature, ok in [("hessian", False), ("ggn", True)]:
        method = InfluenceFunction(curvature=curvature, damping=damping, max_iter=2000)
        if ok:
            compute_influence(model, X, y, Xv, yv, method=method)
        else:
            with pytest.raises(CGConvergenceError, match="non-positive curvature") as err:
                compute_influence(model, X, y, Xv, yv, method=method)
            assert err.value.info.stop == "non_positive_curvature"


def test_on_unconverged_warn_scores_the_partial_solve_and_records_it():
    model, X, y, Xv, yv = _untrained_tanh_net()
    J = Utility().bind(model, Xv, yv)
    # an explicit damping: CG stopping short follows on_unconverged
    method = InfluenceFunction(damping=3.0, max_iter=2, on_unconverged="warn")
    with pytest.warns(RuntimeWarning, match="did not converge"):
        s = method.score(model, J, X, y, batch_size=16)
    assert s.shape == (len(X),)
    assert method.cg_info_.n_iter == 2 and method.cg_info_.stop == "max_iter"
    assert method.cg_info_.residual > method.tol
    # raise (the default): the same record on the error and the method
    method = InfluenceFunction(damping=3.0, max_iter=2)
    with pytest.raises(CGConvergenceError, match="max_iter"):
        method.score(model, J, X, y, batch_size=16)
    assert method.cg_info_.n_iter == 2


@pytest.mark.parametrize("curvature", ["ggn", "hessian"])
def test_every_solver_composes_with_every_curvature(curvature):
    module, loss, X, y, Xv, yv = make_case("mlp_tanh_ce", n=50)
    model = as_torch_model(module, loss=loss, weight_decay=0.5)  # PD either way
    damping = 0.1
    cls = {"ggn": K.GGN, "hessian": K.Hessian}[curvature]
    A = K.Damped(cls(model, model.params, X, y, 13), damping)
    M = K.dense_matrix(A)
    b = _random_like(model.params, 4)
    direct = torch.linalg.solve(M, tree.flatten(b))
    assert rel_err(tree.flatten(K.ExactInverse(A)(b)), direct) <= 1e-10
    inv = K.CGInverse(A, tol=1e-12, max_iter=1000)
    assert rel_err(tree.flatten(inv(b)), direct) <= 1e-8
    eig = torch.linalg.eigvalsh(M)
    scale = 1.1 * float(eig.max())
    depth = int(25 * scale / float(eig.min()))
    got = K.LiSSAInverse(A, scale=scale, depth=depth)(b)
    assert rel_err(tree.flatten(got), direct) <= 1e-6


def test_a_subsample_keeps_the_l2_penalty_of_all_rows():
    X, y = make_classification(n_samples=40, random_state=0)
    clf = LogisticRegression(C=0.5).fit(X, y)
    model = as_torch_model(clf)
    Xt, yt = model.prepare_X(X), model.prepare_y(y)
    # the subsample's curvature, by the formula: the mean over its 10 rows of
    # p (1 - p) x~ x~^T, plus the whole's penalty 1 / (C n) = 1 / (0.5 * 40) = 0.05
    # on the weights, plus the damping 0.1
    expected = _logistic_curvature(clf.coef_, clf.intercept_, X[:10], C=0.5, n_rows=40)
    expected = torch.as_tensor(expected + 0.1 * np.eye(len(expected)))
    for cls in (K.GGN, K.Hessian):
        A = cls(model, model.params, Xt, yt, 8)
        sub = K.Damped(A, 0.1).on_rows(torch.arange(10))
        assert len(sub) == 10 and sub.operator.l2 == {"weight": 0.05}
        v = _random_like(model.params, 0)
        assert rel_err(tree.flatten(sub(v)), expected @ tree.flatten(v)) <= 1e-12


def test_conjugate_gradient_records_iterations_and_residual():
    # three distinct eigenvalues: CG is exact after three steps
    A = torch.diag(torch.tensor([1.0, 1.0, 4.0, 9.0, 9.0], dtype=torch.float64))
    b = {"x": torch.ones(5, dtype=torch.float64)}
    x, info = K.conjugate_gradient(K.MatrixOperator(A), b, tol=1e-12)
    assert info.n_iter == 3 and info.converged and info.stop == "tol"
    assert torch.allclose(x["x"], 1 / torch.diag(A))
    x, info = K.conjugate_gradient(K.MatrixOperator(A), b, tol=1e-12, max_iter=2)
    assert info.n_iter == 2 and not info.converged and info.stop == "max_iter"
    expected = float(torch.linalg.norm(b["x"] - A @ x["x"]) / torch.linalg.norm(b["x"]))
    assert info.residual == pytest.approx(expected, rel=1e-8)
    _, info = K.conjugate_gradient(K.MatrixOperator(A), {"x": torch.zeros(5, dtype=torch.float64)})
    assert info.stop == "zero_rhs" and info.converged and info.n_iter == 0
    with pytest.warns(RuntimeWarning, match="did not converge"):  # the short form still warns
        K.cg(K.MatrixOperator(A), b, tol=1e-12, max_iter=2)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(curvature="fisher"), "curvature"),
        (dict(on_unconverged="ignore"), "on_unconverged"),
        (dict(damping=-1e-3), "damping"),
        (dict(damping="large"), "damping"),
    ],
)
def test_bad_parameters_fail_before_any_work(params, match, monkeypatch):
    X, y = make_classification(n_samples=40, random_state=0)
    clf = LogisticRegression().fit(X[:30], y[:30])
    monkeypatch.setattr(K.GGN, "__call__", lambda *a: pytest.fail("worked before validating"))
    with pytest.raises(ValueError, match=match):
        compute_influence(clf, X[:30], y[:30], X[30:], y[30:], method=InfluenceFunction(**params))


def test_ggn_is_the_default_curvature():
    assert InfluenceFunction().curvature == "ggn"
    assert InfluenceFunction().damping == "auto"
