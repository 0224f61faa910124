"""Relabel scores at the true labels (issue 16, item 2).

Entry ``[c, i]`` of ``Method.score_relabel`` is the score row ``i`` would have
under label ``c``, with everything the method takes from the training labels
(``grad J``, the inverse curvature, kernels, seeds) computed once at the TRUE
labels. Checked against brute force: per-row gradients of the loss under
each class by one autograd call per row, the Hessian by
``torch.autograd.functional.hessian``, the Gauss-Newton matrix from per-row
Jacobians of the logits, all in float64 on a small tanh MLP with 3 classes.
"""

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from _brute import flat_grad, per_row_grads, rel_err
from _tiny_nets import one_torch_thread  # noqa: F401 (autouse fixture)
from cases import make_case
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import TRAK, InfluenceFilter, InfluenceFunction, Method
from skinfluence._cleaning import _effects
from skinfluence._compute import relabel_influence
from skinfluence.methods import IP, IPEnsemble, Loss, SelfInfluence
from skinfluence.models import as_torch_model
from skinfluence.objectives import Utility

N_CLASSES = 3


def _problem(n=40, n_classes=N_CLASSES, seed=0):
    """A float64 tanh MLP (not trained: any point has gradients), rows, objective."""
    name = "mlp_tanh_ce" if n_classes == 3 else "mlp_layernorm_ce"
    module, loss, X, y, Xv, yv = make_case(name, n=n, n_val=15, d=4, seed=seed)
    if n_classes == 3:
        assert int(y.max()) == 2
    model = as_torch_model(module, loss=loss, classes=np.arange(n_classes))
    return model, X, y, Xv, yv, Utility().bind(model, Xv, yv)


def _class_grads(model, X, c):
    """n x P per-row loss gradients with every row labelled ``c`` (autograd per row)."""
    return per_row_grads(model, model.params, X, torch.full((len(X),), c))


def _v(model, Xv, yv):
    """grad J of the utility: the mean loss over the validation rows."""
    return flat_grad(lambda p: model.row_loss(p, Xv, yv).mean(), model.params)


def _unflatten(theta, like):
    out, i = {}, 0
    for k, t in like.items():
        out[k] = theta[i : i + t.numel()].reshape(t.shape)
        i += t.numel()
    return out


def _theta(model):
    return torch.cat([t.reshape(-1) for t in model.params.values()])


def _hessian(model, X, y):
    """Hessian of the training objective (mean loss; the module has no penalty)."""
    return torch.autograd.functional.hessian(
        lambda th: model.row_loss(_unflatten(th, model.params), X, y).mean(),
        _theta(model),
    )


def _ggn(model, X, y):
    """mean_i J_i^T (diag(p_i) - p_i p_i^T) J_i, J_i the Jacobian of row i's logits."""
    theta = _theta(model)
    G = torch.zeros(len(theta), len(theta), dtype=torch.float64)
    for i in range(len(X)):
        J = torch.autograd.functional.jacobian(
            lambda th, i=i: model.outputs(_unflatten(th, model.params), X[i : i + 1])[
                0
            ],
            theta,
        )
        p = torch.softmax(model.outputs(model.params, X[i : i + 1])[0], -1)
        G += J.T @ (torch.diag(p) - torch.outer(p, p)) @ J
    return G / len(X)


def _damped_solve(C, G, damping, v):
    """(C + lambda I)^-1 v with lambda = damping x trace(G) / P (G the GGN)."""
    lam = damping * torch.trace(G) / len(G)
    return torch.linalg.solve(C + lam * torch.eye(len(C), dtype=C.dtype), v)


@pytest.fixture(scope="module")
def mlp():
    """The 3-class problem and its brute-force quantities, computed once."""
    model, X, y, Xv, yv, J = _problem()
    G = _ggn(model, X, y)
    return {
        "args": (model, J, X, y),
        "grads": [_class_grads(model, X, c) for c in range(N_CLASSES)],
        "v": _v(model, Xv, yv),
        "ggn": G,
        "hessian": _hessian(model, X, y),
        "validation": (Xv, yv),
    }


def _brute(mlp, u):
    """[c, i] = <u, grad l(x_i, c)>."""
    return torch.stack([g @ u for g in mlp["grads"]])


def _relabel(method, model, J, X, y, seed=0):
    return method.score_relabel(
        model, J, X, y, n_classes=N_CLASSES, batch_size=16, random_state=seed
    )


# ------------------------------------------------------------- brute force
def test_ip_relabel_is_the_gradient_under_each_class(mlp):
    model, J, X, y = mlp["args"]
    Xv, yv = mlp["validation"]
    brute = _brute(mlp, mlp["v"])
    assert rel_err(_relabel(IP(), *mlp["args"]), brute) < 1e-12
    # the entry point orders the rows as the classes it is given
    order = [2, 0, 1]
    ours = relabel_influence(model, X, y, Xv, yv, classes=order, batch_size=16)
    assert rel_err(ours, brute[order]) < 1e-12


@pytest.mark.parametrize("curvature", ["hessian", "ggn"])
def test_influence_function_relabel_uses_the_curvature_at_the_true_labels(
    mlp, curvature
):
    model, J, X, y = mlp["args"]
    x = _damped_solve(mlp[curvature], mlp["ggn"], 1.0, mlp["v"])
    method = InfluenceFunction(solver="exact", curvature=curvature, damping=1.0)
    ours = _relabel(method, *mlp["args"])
    assert rel_err(ours, _brute(mlp, x)) < 1e-9
    # the old rule, a rerun with every row labelled c, takes the curvature of
    # the relabelled rows: wrong for the Hessian; the GGN of a softmax
    # cross-entropy does not depend on the labels, so there it agrees
    rerun = torch.stack(
        [
            method.score(model, J, X, torch.full((len(X),), c), batch_size=16)
            for c in range(N_CLASSES)
        ]
    )
    if curvature == "hessian":
        assert rel_err(rerun, ours) > 1e-2
    else:
        assert rel_err(rerun, ours) < 1e-9


def test_lissa_relabel_is_the_exact_solve_when_it_converges(mlp):
    """Full-batch LiSSA is deterministic; damped by 10 times the mean eigenvalue
    (the largest is 15 times it) it converges like 0.7^depth: at depth 150, to
    the exact solve."""
    x = _damped_solve(mlp["ggn"], mlp["ggn"], 10.0, mlp["v"])
    method = InfluenceFunction(
        solver="lissa", curvature="ggn", damping=10.0, max_iter=150
    )
    with pytest.warns(UserWarning, match="solver='exact'"):  # it is a small model
        ours = _relabel(method, *mlp["args"])
    assert rel_err(ours, _brute(mlp, x)) < 1e-8


def test_seeded_lissa_relabel_uses_one_solve_for_every_class(mlp):
    """Mini-batch LiSSA: one seeded solve x, at the true labels, for all classes.

    The Hessian's eigenvalues span -9.7 to 16.7 times the GGN's mean one:
    damping 12 makes it positive definite, so LiSSA converges (to noise).
    """
    model, J, X, y = mlp["args"]
    G = mlp["ggn"]
    damped_max = torch.linalg.eigvalsh(mlp["hessian"]).max() + 12.0 * torch.trace(
        G
    ) / len(G)
    method = InfluenceFunction(
        solver="lissa",
        curvature="hessian",
        damping=12.0,
        max_iter=100,
        lissa_batch_size=8,
        scale=1.2 * float(damped_max),  # no power iteration
    )
    with pytest.warns(UserWarning, match="solver='exact'"):
        ours = _relabel(method, model, J, X, y, seed=3).numpy()
        own = method.score(model, J, X, y, batch_size=16, random_state=3).numpy()
    # the true labels' row is the ordinary score with the same seed
    assert_allclose(ours[y.numpy(), np.arange(len(y))], own, rtol=1e-12, atol=0)
    # one vector x explains every class: s[c] = G_c x, by least squares
    A = torch.cat(mlp["grads"]).numpy()
    x, *_ = np.linalg.lstsq(A, ours.reshape(-1), rcond=None)
    assert np.abs(A @ x - ours.reshape(-1)).max() < 1e-10 * np.abs(ours).max()
    # and that x is close to the exact solve at the true labels (seeded noise)
    exact = _damped_solve(mlp["hessian"], G, 12.0, mlp["v"])
    assert np.corrcoef(A @ x, A @ exact.numpy())[0, 1] > 0.95


@pytest.mark.skipif(
    "score_relabel" not in TRAK.__dict__,
    reason="TRAK does not implement score_relabel yet",
)
def test_trak_relabel_uses_the_kernel_at_the_true_labels():
    """TRAK's score is linear in the row's loss gradient, ``Q (1 - p) grad margin =
    -grad l``, through a kernel of the true labels: the direction fitted to the
    true labels' scores predicts every other class's."""
    model, X, y, Xv, yv, J = _problem(n=80)
    method = TRAK(proj_dim=32)
    ours = _relabel(method, model, J, X, y).numpy()
    own = method.score(model, J, X, y, batch_size=16, random_state=0).numpy()
    rows = np.arange(len(y))
    assert_allclose(
        ours[y.numpy(), rows], own, rtol=1e-10, atol=1e-12 * np.abs(own).max()
    )
    G_y = per_row_grads(model, model.params, X, y).numpy()
    u, *_ = np.linalg.lstsq(G_y, own, rcond=1e-10)
    assert np.abs(G_y @ u - own).max() < 1e-8 * np.abs(own).max()  # G_y spans the rows
    predicted = np.stack(
        [_class_grads(model, X, c).numpy() @ u for c in range(N_CLASSES)]
    )
    assert np.abs(predicted - ours).max() < 1e-8 * np.abs(ours).max()


def test_objective_free_relabel_scores(mlp):
    """loss: -l(x_i, c); self_influence: -||grad l(x_i, c)||^2 (no checkpoints)."""
    model, J, X, y = mlp["args"]
    logp = torch.log_softmax(model.outputs(model.params, X), -1)
    assert rel_err(_relabel(Loss(), model, None, X, y), logp.T) < 1e-12
    norms = torch.stack([(g**2).sum(1) for g in mlp["grads"]])
    assert rel_err(_relabel(SelfInfluence(), model, None, X, y), -norms) < 1e-12


def test_ip_ensemble_relabel_uses_each_members_gradient_once(mlp):
    model, J, X, y = mlp["args"]
    Xv, yv = mlp["validation"]
    method = IPEnsemble(n_members=3, max_dropout=0.3)
    members = list(method.members(model.params, 5))
    brute = 0
    for params in members:
        v = flat_grad(lambda p: model.row_loss(p, Xv, yv).mean(), params)
        G = [
            per_row_grads(model, params, X, torch.full((len(X),), c)) for c in range(3)
        ]
        brute = brute + torch.stack([g @ v for g in G]) / len(members)
    counter = _Counting(J)
    assert rel_err(_relabel(method, model, counter, X, y, seed=5), brute) < 1e-12
    assert counter.calls == 3  # once per member, not per member and class


# ------------------------------------------------------------------ counted
class _Counting:
    """A bound objective that counts its gradients."""

    def __init__(self, bound):
        self.bound, self.calls = bound, 0

    def gradient(self, params=None, batch_size=4096):
        self.calls += 1
        return self.bound.gradient(params, batch_size=batch_size)

    def __getattr__(self, name):
        return getattr(self.bound, name)


@pytest.fixture
def solves(monkeypatch):
    """The calls of InfluenceFunction's solve (``inverse_hvp``), as a list."""
    calls = []
    solve = InfluenceFunction.inverse_hvp
    monkeypatch.setattr(
        InfluenceFunction,
        "inverse_hvp",
        lambda self, *a, **k: calls.append(1) or solve(self, *a, **k),
    )
    return calls


@pytest.mark.parametrize("solver", ["exact", "cg", "lissa"])
def test_one_solve_whatever_the_number_of_classes(solves, solver):
    seen = {}
    for n_classes in (2, 3):
        model, X, y, Xv, yv, J = _problem(n_classes=n_classes)
        counter = _Counting(J)
        solves.clear()
        method = InfluenceFunction(solver=solver, damping=1.0, max_iter=20)
        with pytest.warns(UserWarning) if solver == "lissa" else nullcontext():
            s = method.score_relabel(
                model, counter, X, y, n_classes=n_classes, batch_size=16, random_state=0
            )
        assert s.shape == (n_classes, len(X))
        seen[n_classes] = (len(solves), counter.calls)
    assert seen[2] == seen[3] == (1, 1)


def _lr_data(n_classes, n=150, seed=0):
    X, y = make_classification(
        n_samples=n + 60,
        n_features=5,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        flip_y=0.05,
        random_state=seed,
    )
    return X[:n], y[:n], X[n:], y[n:]


def test_the_filter_solves_once_per_objective(solves):
    """InfluenceFilter(action="relabel"): one solve per objective and round,
    for 2 classes as for 3 (a rerun per class made it 4 then 6)."""
    per_classes = {}
    for n_classes in (2, 3):
        X, y, Xv, yv = _lr_data(n_classes)
        solves.clear()
        flt = InfluenceFilter(
            LogisticRegression(),
            method=InfluenceFunction(damping=1e-3),
            action="relabel",
            prune_ratio=0.05,
            constraint="utility",
            rounds=1,
            random_state=0,
        ).fit(X, y, X_val=Xv, y_val=yv)
        per_classes[n_classes] = len(solves)
        # the filter's effects are the entry point's, combined per row
        clf = LogisticRegression().fit(X, y)
        s = relabel_influence(
            clf,
            X,
            y,
            Xv,
            yv,
            classes=np.unique(y),
            method=InfluenceFunction(damping=1e-3),
        )
        effect, _ = _effects(s, y, "relabel")
        assert_allclose(flt.influence_, effect, rtol=1e-9, atol=1e-12)
    assert per_classes == {2: 2, 3: 2}  # target and constraint, not per class


# ------------------------------------------------------------------ refused
class _Coupled(Method):
    """Scores that depend on every row's label (a mean over the rows)."""

    _key = "coupled_test"

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        return torch.full((len(X),), float(y.double().mean()))


def test_a_method_without_relabel_scores_is_refused_before_any_fit(monkeypatch):
    X, y, Xv, yv = _lr_data(2, n=60)

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted")

    monkeypatch.setattr(LogisticRegression, "fit", no_fit)
    flt = InfluenceFilter(LogisticRegression(), method=_Coupled(), action="relabel")
    with pytest.raises(ValueError, match="method='coupled_test' defines no relabel"):
        flt.fit(X, y, X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match="defines no relabel"):
        relabel_influence(None, X, y, Xv, yv, classes=[0, 1], method=_Coupled())


def test_trak_relabels_or_is_refused():
    """TRAK's kernel depends on every row's label: the rerun default is wrong
    for it, so it relabels only through a score_relabel of its own."""
    if "score_relabel" in TRAK.__dict__:
        TRAK().check_relabel()
    else:
        with pytest.raises(ValueError, match="method='trak' defines no relabel"):
            TRAK().check_relabel()


def test_random_relabels_seeded_rows_to_other_classes():
    X, y, Xv, yv = _lr_data(3)
    kw = dict(method="random", action="relabel", prune_ratio=0.1, random_state=0)
    a = InfluenceFilter(LogisticRegression(), **kw).fit(X, y, X_val=Xv, y_val=yv)
    b = InfluenceFilter(LogisticRegression(), **kw).fit(X, y, X_val=Xv, y_val=yv)
    assert_array_equal(a.relabeled_indices_, b.relabeled_indices_)
    changed = a.relabeled_indices_
    assert 0 < len(changed) <= int(0.1 * len(y))
    assert np.all(a.y_fit_[changed] != y[changed])
    assert len(np.unique(a.y_fit_[changed])) > 1  # not every row to one class


# --------------------------------------------------------------------- Dask
def test_dask_relabel_equals_in_memory_with_one_client_solve(solves):
    dask = pytest.importorskip("dask")
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    from skinfluence.dask import relabel_effects

    model, X, y, Xv, yv, J = _problem(n=60)
    method = InfluenceFunction(solver="exact", curvature="hessian", damping=1.0)
    classes = np.arange(N_CLASSES)
    ref = relabel_influence(
        model, X, y, Xv, yv, classes=classes, method=method, batch_size=16
    )
    ref_effect, ref_best = _effects(ref, y.numpy(), "relabel")
    Xd = da.from_array(X.numpy(), chunks=(16, 4))
    solves.clear()
    with dask.config.set(scheduler="sync"):
        lazy = relabel_influence(
            model, Xd, y.numpy(), Xv, yv, classes=classes, method=method, batch_size=16
        )
        assert lazy.shape == (N_CLASSES, 60)
        assert_allclose(lazy.compute(), ref, rtol=1e-12, atol=1e-15 * np.abs(ref).max())
        assert len(solves) == 1  # on the client, at the true labels; blocks replay it
        effect, best = relabel_effects(
            model, Xd, y.numpy(), Xv, yv, method=method, batch_size=16
        )
        assert_allclose(effect.compute(), ref_effect, rtol=1e-10, atol=1e-15)
        assert_array_equal(best.compute(), ref_best)
        # a sampled Hessian (30 of 60 rows) is drawn once, with the true labels:
        # the true labels' row is compute_influence's score on the same sample
        from skinfluence.dask import compute_influence

        sampled = relabel_influence(
            model,
            Xd,
            y.numpy(),
            Xv,
            yv,
            classes=classes,
            method=method,
            batch_size=16,
            hessian_rows=30,
            random_state=4,
        ).compute()
        own = compute_influence(
            model,
            Xd,
            y.numpy(),
            Xv,
            yv,
            method=method,
            batch_size=16,
            hessian_rows=30,
            random_state=4,
        ).compute()
        rows = np.arange(60)
        assert_allclose(sampled[y.numpy(), rows], own, rtol=1e-12, atol=0)
        assert not np.allclose(sampled, ref, rtol=1e-3)  # it is a sample
        frame = pd.DataFrame(X.numpy(), columns=list("abcd")).assign(label=y.numpy())
        ddf = dd.from_pandas(frame, npartitions=3)
        effect_f, best_f = relabel_effects(
            model, ddf[list("abcd")], ddf["label"], Xv, yv, method=method, batch_size=16
        )
        assert_allclose(
            effect_f.compute().to_numpy(), ref_effect, rtol=1e-10, atol=1e-15
        )
        assert_array_equal(best_f.compute().to_numpy(), ref_best)
