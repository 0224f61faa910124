"""The three row kernels, Hessian products and solvers against brute force."""

import pytest
import torch
from _brute import flat_grad, per_row_grads, rel_err
from cases import CASES, make_case

from skinfluence import kernels as K
from skinfluence import _tree as tree
from skinfluence.models import as_torch_model


def _model(name, **kw):
    module, loss, X, y, Xv, yv = make_case(name, **kw)
    return as_torch_model(module, loss=loss), X, y, Xv, yv


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("batch_size", [7, 1000])
def test_grad_dot_equals_per_row_gradients(name, batch_size):
    model, X, y, _, _ = _model(name)
    g = torch.Generator().manual_seed(1)
    v = {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in model.params.items()}
    got = K.grad_dot(model, model.params, v, X, y, batch_size)
    expected = per_row_grads(model, model.params, X, y) @ tree.flatten(v)
    assert rel_err(got, expected) <= 1e-10


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("method", ["auto", "vmap"])
def test_grad_sq_norms_equal_per_row_gradients(name, method):
    model, X, y, _, _ = _model(name)
    got = K.grad_sq_norms(model, model.params, X, y, 9, method=method)
    expected = per_row_grads(model, model.params, X, y).pow(2).sum(1)
    assert rel_err(got, expected) <= 1e-10


def test_closed_form_norms_only_for_linear_layouts():
    model, X, y, _, _ = _model("mlp_layernorm_ce")
    with pytest.raises(ValueError, match="nn.Linear"):
        K.grad_sq_norms(model, model.params, X, y, 8, method="closed_form")
    model, X, y, _, _ = _model("mlp_tanh_ce")
    got = K.grad_sq_norms(model, model.params, X, y, 8, method="closed_form")
    assert rel_err(got, per_row_grads(model, model.params, X, y).pow(2).sum(1)) <= 1e-10


def test_row_losses_chunked():
    model, X, y, _, _ = _model("mlp_tanh_ce")
    expected = torch.nn.functional.cross_entropy(
        model.module(X), y, reduction="none"
    )
    assert rel_err(K.row_losses(model, model.params, X, y, 6), expected) <= 1e-12


def _training_objective(model, X, y):
    lam = model.l2(len(X))

    def f(p):
        return model.row_loss(p, X, y).mean() + sum(
            0.5 * lam.get(k, 0.0) * p[k].pow(2).sum() for k in p
        )

    return f


@pytest.mark.parametrize("name", ["mlp_tanh_ce", "mlp_batchnorm_ce", "binary_bce"])
def test_hvp_matches_finite_differences_of_the_gradient(name):
    module, loss, X, y, _, _ = make_case(name)
    model = as_torch_model(module, loss=loss, weight_decay=0.03)
    g = torch.Generator().manual_seed(2)
    v = {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in model.params.items()}
    got = tree.flatten(K.make_hvp(model, model.params, X, y, 11)(v))
    f = _training_objective(model, X, y)
    h = 1e-5
    plus = flat_grad(f, tree.add(model.params, v, h))
    minus = flat_grad(f, tree.add(model.params, v, -h))
    assert rel_err(got, (plus - minus) / (2 * h)) <= 1e-7


def test_hessian_matrix_matches_hvp():
    module, loss, X, y, _, _ = make_case("mlp_tanh_ce")
    model = as_torch_model(module, loss=loss, weight_decay=0.1)
    H = K.hessian_matrix(model, model.params, X, y, 13)
    assert torch.allclose(H, H.T, atol=1e-12)
    hvp = K.make_hvp(model, model.params, X, y, 100)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        v = {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in model.params.items()}
        assert rel_err(H @ tree.flatten(v), tree.flatten(hvp(v))) <= 1e-10


def _trained_mlp():
    """A small MLP trained to a minimum (full-batch LBFGS), with L2 so H is PD."""
    module, loss, X, y, Xv, yv = make_case("mlp_tanh_ce", n=80)
    model = as_torch_model(module, loss=loss, weight_decay=0.05)
    params = {k: v.clone().requires_grad_(True) for k, v in model.params.items()}
    opt = torch.optim.LBFGS(list(params.values()), max_iter=500, tolerance_grad=1e-12,
                            line_search_fn="strong_wolfe")
    f = _training_objective(model, X, y)

    def closure():
        opt.zero_grad()
        out = f(params)
        out.backward()
        return out

    opt.step(closure)
    trained = {k: v.detach() for k, v in params.items()}
    model.params = trained
    return model, X, y


def test_cg_and_lissa_agree_with_exact_on_a_small_mlp():
    model, X, y = _trained_mlp()
    H = K.hessian_matrix(model, model.params, X, y, 1000)
    damping = 1e-2
    eig = torch.linalg.eigvalsh(H + damping * torch.eye(len(H), dtype=H.dtype))
    assert eig.min() > 0  # a minimum: the damped Hessian is positive definite
    g = torch.Generator().manual_seed(3)
    b = {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in model.params.items()}
    exact = K.exact_solve(model, model.params, X, y, b, damping=damping, batch_size=1000)
    hvp = K.make_hvp(model, model.params, X, y, 1000)
    # exact against a dense solve done here
    direct = torch.linalg.solve(H + damping * torch.eye(len(H), dtype=H.dtype), tree.flatten(b))
    assert rel_err(tree.flatten(exact), direct) <= 1e-10
    # CG: tolerance 1e-8 on the residual -> relative error within cond * 1e-8
    sol = K.cg(hvp, b, damping=damping, tol=1e-10, max_iter=500)
    assert rel_err(tree.flatten(sol), direct) <= 1e-6
    # LiSSA, full batch: converges geometrically at rate 1 - lambda_min / scale
    scale = 1.1 * float(eig.max())
    depth = int(20 * scale / float(eig.min()))
    sol = K.lissa(lambda j, h: hvp(h), b, damping=damping, scale=scale, depth=depth)
    assert rel_err(tree.flatten(sol), direct) <= 1e-4


def test_top_eigenvalue_by_power_iteration():
    model, X, y = _trained_mlp()
    H = K.hessian_matrix(model, model.params, X, y, 1000)
    hvp = K.make_hvp(model, model.params, X, y, 1000)
    lam = K.top_eigenvalue(hvp, model.params, n_iter=200, generator=torch.Generator().manual_seed(0))
    assert lam == pytest.approx(float(torch.linalg.eigvalsh(H).abs().max()), rel=1e-3)


def test_cg_warns_on_indefinite_matrix():
    def matvec(v):
        return {"a": v["a"] * torch.tensor([1.0, -1.0], dtype=torch.float64)}

    with pytest.warns(RuntimeWarning, match="non-positive curvature"):
        K.cg(matvec, {"a": torch.tensor([1.0, 1.0], dtype=torch.float64)})
