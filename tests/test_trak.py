"""TRAK against a dense formula, dattri's TRAKAttributor, retraining; relabel; bad input."""

import warnings

import numpy as np
import pytest
import torch
from _brute import flat_grad, mean_loss_grad, rel_err
from cases import make_case
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import TRAK, compute_influence
from skinfluence import _tree as tree
from skinfluence import kernels as K
from skinfluence.methods import _trak
from skinfluence.models import Checkpoint, as_torch_model
from skinfluence.objectives import Utility

# one torch thread: tests/conftest.py pins it for the session


# ------------------------------------------------------------ references
def _margins(model, params, X, y):
    """Per-row margin gradients (n x P) and p_y, one autograd call per row.

    The margin written as the paper does, log(p / (1 - p)) of the label's
    softmax probability (independent of the library's logsumexp form).
    """

    def f(p, i, c):
        prob = torch.softmax(model.outputs(p, X[i : i + 1]), -1)[0, c]
        return torch.log(prob) - torch.log1p(-prob)

    G = torch.stack(
        [flat_grad(lambda p, i=i: f(p, i, int(y[i])), params) for i in range(len(X))]
    )
    with torch.no_grad():
        prob = torch.softmax(model.outputs(params, X), -1)[torch.arange(len(X)), y]
    return G.numpy(), prob.numpy()


def _dense(G_true, members, damping):
    """Algorithm 1 of the paper in numpy float64, with the package's sign.

    ``members``: per member ``(G_rows, p_rows, g, R)``: the scored rows'
    margin gradients and probabilities (at whatever labels), grad J and the
    P x k projection (None: no projection). ``G_true[m]``: the kernel's
    margin gradients (at the true labels).
    """
    dots, qs = [], []
    for Gt, (G, p, g, R) in zip(G_true, members, strict=True):
        if R is None:
            R = np.eye(G.shape[1])
        Phi, k = Gt @ R, R.shape[1]
        gram = Phi.T @ Phi / len(Gt)
        gram += damping * np.trace(gram) / k * np.eye(k)
        solve = (
            np.linalg.pinv(gram, hermitian=True)
            if damping == 0
            else np.linalg.inv(gram)
        )
        dots.append((G @ R) @ (solve @ (R.T @ g)))
        qs.append(1 - p)
    return -np.mean(dots, 0) * np.mean(qs, 0)


def _matrix(projection):
    """The P x k matrix of a GaussianProjection, column by column."""
    k = projection.k
    return torch.stack(
        [tree.flatten(projection.lift(e)) for e in torch.eye(k, dtype=torch.float64)], 1
    ).numpy()


@pytest.fixture
def projections(monkeypatch):
    """The projections TRAK draws, in member order."""
    seen = []

    class Spy(K.GaussianProjection):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            seen.append(self)

    monkeypatch.setattr(_trak, "GaussianProjection", Spy)
    return seen


def _net(n=200, checkpoints=0):
    """A tanh MLP, 3 classes, 52 parameters (float64). Its margin gradients span
    44 dimensions (those of the output layer sum to zero over the classes)."""
    module, loss, X, y, Xv, yv = make_case("mlp_tanh_ce", n=n, d=3)
    g = torch.Generator().manual_seed(5)
    cks = [
        (
            {
                k: v.detach() + 0.1 * torch.randn(v.shape, generator=g, dtype=v.dtype)
                for k, v in module.named_parameters()
            },
            0.1,
        )
        for _ in range(checkpoints)
    ]
    return as_torch_model(module, loss=loss, checkpoints=cks), X, y, Xv, yv


def _points(model, n_members):
    """The members' parameters: the last checkpoints, else the fitted model."""
    cks = [p for p, _ in model.checkpoint_params()]
    return cks[-n_members:] if cks else [model.params]


# ------------------------------------------------------------------ score
def test_full_projection_without_damping_is_the_unprojected_formula():
    """proj_dim = P, damping 0: R is invertible and drops out. The margin
    gradients are rank-deficient (44 of 52), so the kernel is singular: a
    warning gives its condition number and the solve is the pseudo-inverse."""
    model, X, y, Xv, yv = _net()
    P = tree.n_params(model.params)
    with pytest.warns(UserWarning, match=r"condition number (inf|\d)"):
        got = compute_influence(
            model,
            X,
            y,
            Xv,
            yv,
            method=TRAK(proj_dim=P, damping=0.0),
            random_state=0,
            batch_size=16,
        )
    G, p = _margins(model, model.params, X, y)
    g = mean_loss_grad(model, model.params, Xv, yv).numpy()
    expected = _dense([G], [(G, p, g, None)], 0.0)
    assert rel_err(got, expected) <= 1e-7


@pytest.mark.parametrize("k, n_members", [(8, 1), (60, 3)])
def test_damped_projection_and_members_are_the_dense_formula(projections, k, n_members):
    """Default damping (relative to the kernel's mean eigenvalue), checkpoint
    members averaged as the paper's Algorithm 1: kernel products and Q apart."""
    model, X, y, Xv, yv = _net(checkpoints=3)
    got = compute_influence(
        model,
        X,
        y,
        Xv,
        yv,
        method=TRAK(proj_dim=k, n_members=n_members),
        random_state=4,
        batch_size=16,
    )
    assert len(projections) == n_members
    members, Gt = [], []
    for params, R in zip(_points(model, n_members), projections, strict=True):
        G, p = _margins(model, params, X, y)
        members.append(
            (G, p, mean_loss_grad(model, params, Xv, yv).numpy(), _matrix(R))
        )
        Gt.append(G)
    assert TRAK().damping > 0
    assert rel_err(got, _dense(Gt, members, TRAK().damping)) <= 1e-10


def test_binary_logit_and_any_objective(projections):
    """LogisticRegression (a binary logit z: the margin is +-z) and the fairness
    objective: J's gradient, whatever J, is projected like a row's."""
    X, y = make_classification(
        n_samples=120, n_features=4, n_informative=3, n_redundant=0, random_state=1
    )
    s = np.arange(120) % 2
    clf = LogisticRegression(C=0.5).fit(X[:80], y[:80])
    got = compute_influence(
        clf,
        X[:80],
        y[:80],
        X[80:],
        y[80:],
        objective="fairness",
        sensitive_features_val=s[80:],
        method=TRAK(proj_dim=4),
        random_state=0,
    )
    model = as_torch_model(clf)
    Xv, sv = model.prepare_X(X[80:]), torch.as_tensor(s[80:])

    def gap(p):  # the demographic-parity gap |mean p over group 1 - over group 0|
        prob = torch.sigmoid(model.outputs(p, Xv).reshape(-1))
        return (prob[sv == 1].mean() - prob[sv == 0].mean()).abs()

    G = np.c_[X[:80], np.ones(80)] * np.where(y[:80] == 1, 1.0, -1.0)[:, None]
    p = clf.predict_proba(X[:80])[np.arange(80), y[:80]]
    g = flat_grad(gap, model.params).numpy()
    expected = _dense([G], [(G, p, g, _matrix(projections[0]))], TRAK().damping)
    assert rel_err(got, expected) <= 1e-5  # float32 model


def test_sign_predicts_leave_one_out_retraining():
    """Independent of the formula: removing row i changes the validation loss
    by about +s_i / n, so scores rank-correlate with the measured change."""
    from scipy.stats import spearmanr

    X, y = make_classification(
        n_samples=140,
        n_features=5,
        n_informative=4,
        n_redundant=0,
        flip_y=0.1,
        random_state=3,
    )
    Xt, yt, Xv, yv = X[:60], y[:60], X[60:], y[60:]

    def val_loss(clf):
        p = clf.predict_proba(Xv)[np.arange(len(yv)), yv]
        return -np.mean(np.log(p))

    fit = LogisticRegression(C=10.0, tol=1e-10, max_iter=1000).fit
    full = val_loss(fit(Xt, yt))
    change = np.array(
        [val_loss(fit(np.delete(Xt, i, 0), np.delete(yt, i))) - full for i in range(60)]
    )
    s = compute_influence(
        fit(Xt, yt), Xt, yt, Xv, yv, method=TRAK(proj_dim=6), random_state=0
    )
    assert spearmanr(s, change).statistic > 0.8


def test_ill_conditioned_kernel_warns_with_its_condition_number():
    """Collinear features at proj_dim = P: undamped, the kernel is singular and
    TRAK says so; the default damping solves it without a warning."""
    X, y = make_classification(
        n_samples=100, n_features=3, n_informative=3, n_redundant=0, random_state=0
    )
    X = np.c_[X, X[:, 0] - 2 * X[:, 1]]  # P = 5, rank 4
    clf = LogisticRegression().fit(X[:70], y[:70])
    args = (clf, X[:70], y[:70], X[70:], y[70:])
    with pytest.warns(
        UserWarning,
        match=r"ill-conditioned: condition number (inf|[\d.e+]+) .*proj_dim=5, damping=0",
    ):
        got = compute_influence(
            *args, method=TRAK(proj_dim=5, damping=0.0), random_state=0
        )
    # the pseudo-inverse of the unprojected kernel (LogisticRegression is float64)
    G = np.c_[X[:70], np.ones(70)] * np.where(y[:70] == 1, 1.0, -1.0)[:, None]
    model = as_torch_model(clf)
    g = tree.flatten(
        Utility().bind(model, X[70:], y[70:]).gradient(model.params)
    ).numpy()
    p = clf.predict_proba(X[:70])[np.arange(70), y[:70]]
    assert rel_err(got, _dense([G], [(G, p, g, None)], 0.0)) <= 1e-10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compute_influence(*args, method=TRAK(proj_dim=5), random_state=0)


def test_proj_dim_beyond_the_parameters_is_capped(projections):
    """proj_dim = 64 on a 5-parameter LogisticRegression projects to 5
    dimensions (``proj_dim_``): undamped, the unprojected formula; damped,
    the dense formula with the 5 x 5 projection and lambda relative to k = 5."""
    X, y = make_classification(
        n_samples=100, n_features=4, n_informative=4, n_redundant=0, random_state=1
    )
    clf = LogisticRegression().fit(X[:70], y[:70])
    model = as_torch_model(clf)
    J = Utility().bind(model, X[70:], y[70:])
    Xp, yp = model.prepare_X(X[:70]), model.prepare_y(y[:70])
    method = TRAK(proj_dim=64, damping=0.0)
    got = method.score(model, J, Xp, yp, batch_size=32, random_state=0).numpy()
    assert method.proj_dim_ == 5 and [R.k for R in projections] == [5]
    G = np.c_[X[:70], np.ones(70)] * np.where(y[:70] == 1, 1.0, -1.0)[:, None]
    g = tree.flatten(J.gradient(model.params)).numpy()
    p = clf.predict_proba(X[:70])[np.arange(70), y[:70]]
    assert rel_err(got, _dense([G], [(G, p, g, None)], 0.0)) <= 1e-10
    damped = TRAK(proj_dim=64)
    got = damped.score(model, J, Xp, yp, batch_size=32, random_state=0).numpy()
    R = _matrix(projections[-1])
    assert R.shape == (5, 5) and damped.proj_dim_ == 5
    assert rel_err(got, _dense([G], [(G, p, g, R)], damped.damping)) <= 1e-10


@pytest.mark.parametrize("n_members", [1, 2])
def test_agrees_with_dattri_on_the_same_projection(monkeypatch, projections, n_members):
    """dattri's TRAKAttributor with the margin as its output function and our
    projections: the same scores, but for the sign (dattri's score is the
    predicted rise of the target J; ours is minus it) and a scale."""
    pytest.importorskip("dattri")
    import dattri.algorithm.trak as dattri_trak
    from dattri.task import AttributionTask

    model, X, y, Xv, yv = _net(n=120, checkpoints=2)
    damping = 0.01 if n_members == 1 else 0.0  # dattri has one absolute damping for all
    ours = compute_influence(
        model,
        X,
        y,
        Xv,
        yv,
        method=TRAK(proj_dim=16, n_members=n_members, damping=damping),
        random_state=0,
        batch_size=32,
    )
    Rs = [torch.as_tensor(_matrix(R)) for R in projections]
    monkeypatch.setattr(
        dattri_trak,
        "random_project",
        lambda grad, batch, **kw: lambda g, ensemble_id: g @ Rs[ensemble_id],
    )
    module = model.module

    def logp(params, x):
        return torch.log_softmax(torch.func.functional_call(module, params, (x,)), -1)

    def logp_y(params, data):
        x, t = data
        return logp(params, x).gather(-1, t[..., None])[..., 0]

    def margin(params, data):  # dattri's documented form
        return logp_y(params, data) - torch.log1p(-logp_y(params, data).exp())

    def target(params, data):
        x, t = data
        return -logp(params, x).gather(-1, t[:, None]).mean()

    cks = [
        {k: v.clone() for k, v in params.items()}
        for params in _points(model, n_members)
    ]
    P = tree.n_params(model.params)
    reg = 0.0
    if damping:  # ours: Phi^T Phi / n + d tr(.)/k I; dattri: (Phi^T Phi + reg I) / P
        Phi = _margins(model, cks[0], X, y)[0] @ Rs[0].numpy()
        reg = damping * np.trace(Phi.T @ Phi) / 16 / P
    att = dattri_trak.TRAKAttributor(
        task=AttributionTask(
            loss_func=margin, target_func=target, model=module, checkpoints=cks
        ),
        correct_probability_func=lambda params, data: logp_y(params, data).exp(),
        regularization=reg,
    )
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, y), batch_size=50
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        att.cache(loader)
        theirs = (
            att.attribute(
                torch.utils.data.DataLoader(
                    torch.utils.data.TensorDataset(Xv[None], yv[None]), batch_size=1
                )
            )
            .reshape(-1)
            .numpy()
        )
    cosine = -ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs)
    assert cosine >= 0.99
    assert cosine >= 1 - 1e-9  # the same formula: equal up to rounding


# ---------------------------------------------------------------- relabel
def test_relabel_is_the_brute_force_per_class_formula(projections, monkeypatch):
    """Entry [c, i]: row i's margin gradient and Q at label c; the kernels,
    projections and grad J at the true labels, once per member (counted)."""
    model, X, y, Xv, yv = _net(n=60, checkpoints=2)
    solves = []
    real = _trak.damped_solve
    monkeypatch.setattr(_trak, "damped_solve", lambda *a: solves.append(1) or real(*a))
    J = Utility().bind(model, Xv, yv)
    got = TRAK(proj_dim=12, n_members=2).score_relabel(
        model, J, X, y, n_classes=3, batch_size=16, random_state=1
    )
    assert got.shape == (3, 60) and len(solves) == 2  # not 2 x 3
    Gt = [_margins(model, params, X, y)[0] for params in _points(model, 2)]
    for c in range(3):
        members = []
        for params, R in zip(_points(model, 2), projections, strict=True):
            G, p = _margins(model, params, X, torch.full_like(y, c))
            members.append(
                (G, p, mean_loss_grad(model, params, Xv, yv).numpy(), _matrix(R))
            )
        assert rel_err(got[c], _dense(Gt, members, TRAK().damping)) <= 1e-10
    own = TRAK(proj_dim=12, n_members=2).score(
        model, J, X, y, batch_size=16, random_state=1
    )
    assert rel_err(got[y, torch.arange(60)], own) <= 1e-12


# ------------------------------------------------ seeds, memory, bad input
def test_seeded_runs_are_identical_and_seeds_differ():
    model, X, y, Xv, yv = _net(checkpoints=2)
    method = TRAK(proj_dim=16, n_members=2)
    a, b, c = (
        compute_influence(
            model, X, y, Xv, yv, method=method, random_state=r, batch_size=16
        )
        for r in (7, 7, 8)
    )
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-6
    drop = TRAK(proj_dim=16, n_members=3, ensemble="dropout", max_dropout=0.2)
    a, b = (
        compute_influence(model, X, y, Xv, yv, method=drop, random_state=1)
        for _ in range(2)
    )
    np.testing.assert_array_equal(a, b)


def test_independent_members_as_checkpoints(projections):
    """Independently trained models given as checkpoints are the members."""
    module, loss, X, y, Xv, yv = make_case("binary_bce", n=80, d=3)
    others = [make_case("binary_bce", n=80, d=3, seed=s)[0] for s in (1, 2)]
    cks = [
        Checkpoint({k: v.detach() for k, v in m.named_parameters()}, 1.0)
        for m in others
    ]
    model = as_torch_model(module, loss=loss, checkpoints=cks)
    got = compute_influence(
        model,
        X,
        y,
        Xv,
        yv,
        method=TRAK(proj_dim=6, n_members=2),
        random_state=0,
        batch_size=32,
    )
    members, Gt = [], []
    for params, R in zip(_points(model, 2), projections, strict=True):
        z = model.outputs(params, X).detach()
        sign = (2 * y - 1).to(z.dtype)

        def margin(p, i, sign=sign):
            return sign[i] * model.outputs(p, X[i : i + 1])[0]

        G = torch.stack(
            [flat_grad(lambda p, i=i: margin(p, i), params) for i in range(80)]
        ).numpy()
        p_y = torch.sigmoid(sign * z).numpy()
        members.append(
            (G, p_y, mean_loss_grad(model, params, Xv, yv).numpy(), _matrix(R))
        )
        Gt.append(G)
    assert rel_err(got, _dense(Gt, members, TRAK().damping)) <= 1e-10


def test_the_projection_is_a_jl_map_and_does_not_depend_on_memory():
    like = {"w": torch.zeros(40, 50, dtype=torch.float64)}
    R = K.GaussianProjection(like, k=300, seed=0)
    small = K.GaussianProjection(
        like, k=300, seed=0, max_entries=4000
    )  # drawn a block at a time
    assert small._held is None
    v = {
        "w": torch.randn(
            40, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
        )
    }
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

    import skinfluence._kernels._projection as kernels_module

    monkeypatch.setattr(kernels_module, "per_row_gradients", spy)
    monkeypatch.setattr(kernels_module, "_PROJECTION_CHUNK_ENTRIES", 52 * 10)
    compute_influence(
        model, X, y, Xv, yv, method=TRAK(proj_dim=8), random_state=0, batch_size=16
    )
    assert max(seen) == 10 and sum(seen) == len(X)  # never n x P
    seen.clear()
    monkeypatch.setattr(kernels_module, "_PROJECTION_CHUNK_ENTRIES", 2**25)
    compute_influence(
        model, X, y, Xv, yv, method=TRAK(proj_dim=8), random_state=0, batch_size=16
    )
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
    import skinfluence._kernels._projection as kernels_module

    monkeypatch.setattr(
        kernels_module, "per_row_gradients", lambda *a: pytest.fail("worked first")
    )
    with pytest.raises(ValueError, match=match):
        compute_influence(model, X, y, Xv, yv, method=TRAK(**params))


def test_checkpoint_ensemble_needs_checkpoints_and_a_margin():
    model, X, y, Xv, yv = _net()
    with pytest.raises(ValueError, match="method='trak' needs training checkpoints"):
        compute_influence(model, X, y, Xv, yv, method=TRAK(ensemble="checkpoints"))
    assert TRAK().wants_checkpoints and not TRAK(ensemble="dropout").wants_checkpoints
    module = torch.nn.Linear(3, 1).double()
    mse = as_torch_model(module, loss=torch.nn.MSELoss())
    J = Utility().bind(model, Xv, yv)
    with pytest.raises(TypeError, match="needs class probabilities"):
        TRAK().score(mse, J, X, y.double(), batch_size=16)


def test_damped_solve_flags_an_ill_conditioned_kernel_and_solves_it():
    """Eigenvalues 1, 1e-3, 1e-11 in a random basis: the condition number is
    1e11 > 1e10, so a warning gives it, and the solve is still the inverse
    (no eigenvalue is below rounding); at 1, 1e-3, 1e-6 nothing is said."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    b = rng.standard_normal(3)
    for smallest, warns in ((1e-11, True), (1e-6, False)):
        A = basis @ np.diag([1.0, 1e-3, smallest]) @ basis.T
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = _trak.damped_solve(
                torch.as_tensor(A), torch.as_tensor(b), 0.0, torch.float64
            )
        said = [str(w.message) for w in caught]
        assert (len(said) == 1 and "condition number 1e+11" in said[0]) == warns
        assert not said or warns
        expected = basis @ ((basis.T @ b) / np.array([1.0, 1e-3, smallest]))
        assert rel_err(got, expected) <= (1e-4 if warns else 1e-9)
