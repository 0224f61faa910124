"""TRAK against the unprojected formula computed densely, seeds, members, bad input."""

import numpy as np
import pytest
import torch
from _brute import mean_loss_grad, per_row_grads, rel_err
from cases import make_case
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import TRAK, Fairness, compute_influence
from skinfluence import _tree as tree
from skinfluence import kernels as K
from skinfluence.models import as_torch_model


# one torch thread: tests/conftest.py pins it for the session


def _dense_trak(model, params, X, y, grad_J, damping=0.0):
    """grad_l_i^T (G^T G / n + damping I)^+ grad_J, G by an autograd loop."""
    G = per_row_grads(model, params, X, y)
    M = G.T @ G / len(X) + damping * torch.eye(G.shape[1], dtype=G.dtype)
    return G @ torch.linalg.pinv(M, hermitian=True) @ grad_J


def _net(n=200, checkpoints=0):
    """A tanh MLP with 52 parameters. Its per-row gradients span 44 dimensions
    (softmax cross-entropy: those of the output layer sum to zero over the
    classes), where G^T G / n has a condition number of 8e7 at n=200 (3e9 at
    n=60): so float64 solves agree to about 1e-8, not better."""
    module, loss, X, y, Xv, yv = make_case("mlp_tanh_ce", n=n, d=3)
    g = torch.Generator().manual_seed(5)
    cks = [
        ({k: v.detach() + 0.1 * torch.randn(v.shape, generator=g, dtype=v.dtype)
          for k, v in module.named_parameters()}, 0.1)
        for _ in range(checkpoints)
    ]
    return as_torch_model(module, loss=loss, checkpoints=cks), X, y, Xv, yv


@pytest.mark.parametrize("extra", [0, 9])
def test_full_projection_and_one_member_equal_the_unprojected_formula(extra):
    model, X, y, Xv, yv = _net()
    P = tree.n_params(model.params)  # 3 * 7 + 7 + 7 * 3 + 3 = 52
    method = TRAK(proj_dim=P + extra, n_members=1)
    got = compute_influence(model, X, y, Xv, yv, method=method, random_state=0, batch_size=16)
    expected = _dense_trak(model, model.params, X, y, mean_loss_grad(model, model.params, Xv, yv))
    assert rel_err(got, expected) <= 1e-8


def test_the_objective_gradient_is_projected_like_a_row():
    """A fairness objective: J's gradient, whatever J, through the same formula."""
    X, y = make_classification(n_samples=120, n_features=4, n_informative=3, n_redundant=0, random_state=1)
    s = np.arange(120) % 2
    clf = LogisticRegression(C=0.5).fit(X[:80], y[:80])
    model = as_torch_model(clf)
    got = compute_influence(clf, X[:80], y[:80], X[80:], y[80:], objective="fairness",
                            sensitive_features_val=s[80:], method=TRAK(proj_dim=5), random_state=0)
    Xt, yt = model.prepare_X(X[:80]), model.prepare_y(y[:80])
    Xv = model.prepare_X(X[80:])
    # the demographic-parity gap |mean p over group 1 - over group 0|, by hand
    sv = torch.as_tensor(s[80:])

    def gap(p):
        prob = torch.sigmoid(model.outputs(p, Xv).reshape(-1))
        return (prob[sv == 1].mean() - prob[sv == 0].mean()).abs()

    from _brute import flat_grad

    grad_J = flat_grad(gap, model.params)
    assert rel_err(got, _dense_trak(model, model.params, Xt, yt, grad_J)) <= 1e-8
    assert Fairness().metric == "demographic_parity"


def test_checkpoint_members_are_the_mean_over_the_last_checkpoints():
    model, X, y, Xv, yv = _net(checkpoints=3)
    P = tree.n_params(model.params)
    got = compute_influence(model, X, y, Xv, yv, method=TRAK(proj_dim=P + 4, n_members=2),
                            random_state=3, batch_size=16)
    cks = [p for p, _ in model.checkpoint_params()][-2:]
    expected = sum(_dense_trak(model, p, X, y, mean_loss_grad(model, p, Xv, yv)) for p in cks) / 2
    assert rel_err(got, expected) <= 1e-8
    # more members than checkpoints: all of them
    got = compute_influence(model, X, y, Xv, yv, method=TRAK(proj_dim=P, n_members=10),
                            random_state=3, batch_size=16)
    cks = [p for p, _ in model.checkpoint_params()]
    expected = sum(_dense_trak(model, p, X, y, mean_loss_grad(model, p, Xv, yv)) for p in cks) / 3
    assert rel_err(got, expected) <= 1e-8


def test_dropout_members_without_dropout_average_to_the_formula():
    """max_dropout=0: every member is the fitted model, each with its own projection."""
    model, X, y, Xv, yv = _net()
    P = tree.n_params(model.params)
    method = TRAK(proj_dim=P, n_members=3, ensemble="dropout", max_dropout=0.0)
    got = compute_influence(model, X, y, Xv, yv, method=method, random_state=0, batch_size=16)
    expected = _dense_trak(model, model.params, X, y, mean_loss_grad(model, model.params, Xv, yv))
    assert rel_err(got, expected) <= 1e-8


def test_a_small_projection_with_damping_is_the_projected_formula():
    model, X, y, Xv, yv = _net()
    damping, k = 0.05, 8
    R = K.GaussianProjection(model.params, k, seed=11)
    Rm = torch.stack([tree.flatten(R.lift(e)) for e in torch.eye(k, dtype=torch.float64)], 1)  # P x k
    G = per_row_grads(model, model.params, X, y) @ Rm
    g = mean_loss_grad(model, model.params, Xv, yv) @ Rm
    expected = G @ torch.linalg.solve(G.T @ G / len(X) + damping * torch.eye(k, dtype=G.dtype), g)
    # the member's projection is GaussianProjection(params, k, seed): replay it
    from skinfluence.methods._trak import _member_scores
    from skinfluence.objectives import Utility

    J = Utility().bind(model, Xv, yv)
    got = _member_scores(model, J, model.params, X, y, R, damping, 16)
    assert rel_err(got, expected) <= 1e-10


def test_seeded_runs_are_identical_and_seeds_differ():
    model, X, y, Xv, yv = _net(checkpoints=2)
    method = TRAK(proj_dim=16, n_members=2)
    a, b, c = (compute_influence(model, X, y, Xv, yv, method=method, random_state=r, batch_size=16)
               for r in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-6
    drop = TRAK(proj_dim=16, n_members=3, ensemble="dropout", max_dropout=0.2)
    a, b = (compute_influence(model, X, y, Xv, yv, method=drop, random_state=1) for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_the_projection_is_a_jl_map_and_does_not_depend_on_memory():
    like = {"w": torch.zeros(40, 50, dtype=torch.float64)}
    R = K.GaussianProjection(like, k=300, seed=0)
    small = K.GaussianProjection(like, k=300, seed=0, max_entries=4000)  # drawn a block at a time
    assert small._held is None
    v = {"w": torch.randn(40, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(1))}
    assert torch.equal(R.project(v), small.project(v))
    w = torch.randn(300, dtype=torch.float64)
    assert torch.allclose(R.lift(w)["w"], small.lift(w)["w"])
    # E[R R^T] = I: norms kept within a few 1/sqrt(k)
    ratio = float(R.project(v).pow(2).sum() / tree.dot(v, v))
    assert abs(ratio - 1) < 4 / np.sqrt(300) * np.sqrt(2)


def test_memory_is_one_chunk_of_rows(monkeypatch):
    model, X, y, Xv, yv = _net()
    seen = []
    real = K.per_row_gradients

    def spy(model, params, Xb, yb):
        seen.append(len(Xb))
        return real(model, params, Xb, yb)

    import skinfluence._kernels as kernels_module

    monkeypatch.setattr(kernels_module, "per_row_gradients", spy)
    monkeypatch.setattr(kernels_module, "_PROJECTION_CHUNK_ENTRIES", 52 * 10)
    compute_influence(model, X, y, Xv, yv, method=TRAK(proj_dim=8), random_state=0, batch_size=16)
    assert max(seen) == 10 and sum(seen) == len(X)  # never n x P
    seen.clear()
    monkeypatch.setattr(kernels_module, "_PROJECTION_CHUNK_ENTRIES", 2**25)
    compute_influence(model, X, y, Xv, yv, method=TRAK(proj_dim=8), random_state=0, batch_size=16)
    assert max(seen) == 16 and sum(seen) == len(X)  # batch_size rows


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(proj_dim=0), "proj_dim"),
        (dict(n_members=0), "n_members"),
        (dict(ensemble="bagging"), "ensemble"),
        (dict(max_dropout=1.0), "max_dropout"),
        (dict(damping=-1.0), "damping"),
    ],
)
def test_bad_parameters_fail_before_any_work(params, match, monkeypatch):
    model, X, y, Xv, yv = _net()
    import skinfluence._kernels as kernels_module

    monkeypatch.setattr(kernels_module, "per_row_gradients", lambda *a: pytest.fail("worked first"))
    with pytest.raises(ValueError, match=match):
        compute_influence(model, X, y, Xv, yv, method=TRAK(**params))


def test_checkpoint_ensemble_needs_checkpoints():
    model, X, y, Xv, yv = _net()
    with pytest.raises(ValueError, match="method='trak' needs training checkpoints"):
        compute_influence(model, X, y, Xv, yv, method=TRAK(ensemble="checkpoints"))
    assert TRAK().wants_checkpoints and not TRAK(ensemble="dropout").wants_checkpoints
