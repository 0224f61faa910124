"""Sparse X stays sparse: the same scores as dense X, and no whole densification.

The reference is the dense path on ``X.toarray()`` (itself checked against
brute force in test_kernels.py and test_methods.py).
"""

import copy
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from skorch import NeuralNetClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from torch import nn

from skinfluence import (
    InfluenceFunction,
    Robustness,
    SelfInfluence,
    compute_influence,
)
from skinfluence import kernels as K
from skinfluence.models import as_torch_model
from skinfluence.signals import influence_matrix

TOL = 1e-10


def _sparse_problem(n=150, n_val=40, d=60, density=0.08, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n + n_val, d, density=density, format="csr", random_state=seed)
    X.data = rng.normal(size=X.nnz)
    w = rng.normal(size=d)
    y = (X @ w + 0.3 * rng.normal(size=n + n_val) > 0).astype(int)
    return X[:n], y[:n], X[n:], y[n:]


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


class _MLP(nn.Module):
    def __init__(self, d=60, hidden=5):
        super().__init__()
        self.hidden = nn.Linear(d, hidden)
        self.out = nn.Linear(hidden, 2)

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X)))


class _TanhFirst(nn.Module):
    """Applies tanh to its input first: the sparse rows are densified (a chunk)."""

    def __init__(self, d=60):
        super().__init__()
        self.lin = nn.Linear(d, 2)

    def forward(self, X):
        return self.lin(torch.tanh(X))


def _skorch_net(X, y):
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        _MLP,
        criterion=nn.CrossEntropyLoss,
        max_epochs=5,
        lr=0.1,
        batch_size=32,
        train_split=None,
        verbose=0,
    )
    net.initialize()
    net.module_.double()
    return net.partial_fit(X.toarray(), y)


METHODS = {
    "ip": "ip",
    "self_influence": SelfInfluence(use_checkpoints=False),
    "if_exact": InfluenceFunction(solver="exact", damping=0.5),
    "if_cg": InfluenceFunction(solver="cg", damping=0.5, tol=1e-12, max_iter=500),
    "if_lissa_minibatch": InfluenceFunction(
        solver="lissa", damping=0.1, max_iter=30, lissa_batch_size=50
    ),
}


@pytest.mark.parametrize("family", ["logistic", "skorch"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_sparse_scores_equal_dense_scores(family, method, monkeypatch):
    X, y, Xv, yv = _sparse_problem()
    if family == "logistic":
        est = LogisticRegression(C=0.5, max_iter=1000).fit(X, y)
    else:
        est = _skorch_net(X, y)
    kw = dict(method=METHODS[method], batch_size=32, random_state=3)
    dense = compute_influence(est, X.toarray(), y, Xv.toarray(), yv, **kw)
    densified = _record_densified(monkeypatch)
    sparse = compute_influence(est, X, y, Xv, yv, **kw)
    assert _rel(sparse, dense) <= TOL
    assert densified == []  # the first layer is an nn.Linear: sparse products


@pytest.mark.cuda
@pytest.mark.parametrize("method", sorted(METHODS))
def test_sparse_on_cuda_equals_dense_on_cpu(method):
    X, y, Xv, yv = _sparse_problem()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(60, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    cpu = as_torch_model(net, loss=nn.CrossEntropyLoss())
    gpu = as_torch_model(copy.deepcopy(net).cuda(), loss=nn.CrossEntropyLoss())
    kw = dict(method=METHODS[method], batch_size=32, random_state=3)
    dense = compute_influence(cpu, X.toarray(), y, Xv.toarray(), yv, **kw)
    sparse = compute_influence(gpu, X, y, Xv, yv, **kw)
    assert _rel(sparse, dense) <= 1e-8


def test_sparse_modules_any_layout_and_objective():
    """A module densifying its input, the vmap path, and the robustness
    objective (dense adversarial copies of sparse rows) agree with dense X."""
    X, y, Xv, yv = _sparse_problem()
    torch.manual_seed(1)
    tanh_first = as_torch_model(_TanhFirst().double(), loss=nn.CrossEntropyLoss())
    torch.manual_seed(2)
    norm = nn.Sequential(nn.Linear(60, 4), nn.LayerNorm(4), nn.Tanh(), nn.Linear(4, 2))
    layer_norm = as_torch_model(norm.double(), loss=nn.CrossEntropyLoss())
    for model, method, objective in [
        (tanh_first, "ip", "utility"),
        (tanh_first, "self_influence", "utility"),
        (layer_norm, "self_influence", "utility"),
        (layer_norm, "ip", Robustness(epsilon=0.05)),
    ]:
        kw = dict(method=method, objective=objective, batch_size=16)
        dense = compute_influence(model, X.toarray(), y, Xv.toarray(), yv, **kw)
        sparse = compute_influence(model, X, y, Xv, yv, **kw)
        assert _rel(sparse, dense) <= TOL


def test_sparse_pipeline_output_equals_dense_pipeline_output():
    rng = np.random.default_rng(0)
    cats = rng.integers(0, 12, size=(200, 4))
    y = (cats[:, 0] % 3 == 0) ^ (rng.random(200) < 0.1)
    scores = []
    for sparse_output in (True, False):
        pipe = make_pipeline(
            OneHotEncoder(sparse_output=sparse_output, handle_unknown="ignore"),
            LogisticRegression(max_iter=1000),
        ).fit(cats[:150], y[:150])
        scores.append(
            compute_influence(
                pipe, cats[:150], y[:150], cats[150:], y[150:], method="ip"
            )
        )
    assert _rel(scores[0], scores[1]) <= TOL


@pytest.mark.parametrize("method", ["closed_form", "vmap"])
def test_sparse_influence_matrix_equals_dense(method):
    X, y, Xv, yv = _sparse_problem(n=50, n_val=20)
    model = as_torch_model(_skorch_net(X, y))
    blocks = []
    for data in ((X, Xv), (X.toarray(), Xv.toarray())):
        Xt, Xvt = (model.prepare_X(a) for a in data)
        yt, yvt = model.prepare_y(y), model.prepare_y(yv)
        blocks.append(
            influence_matrix(model, Xt, yt, Xvt, yvt, batch_size=7, method=method)
        )
    assert isinstance(model.prepare_X(X), K.SparseRows)
    assert _rel(blocks[0], blocks[1]) <= TOL


def test_sparse_rows_slice_index_and_algebra_match_scipy():
    X, _, _, _ = _sparse_problem(n=30, n_val=0, d=9, density=0.3)
    rows = K.SparseRows.from_scipy(X)
    dense = X.toarray()
    for key in (slice(3, 11), slice(0, 0), [5, 0, 5, 29], np.array([-1, 2])):
        np.testing.assert_array_equal(rows[key].to_dense().numpy(), dense[key])
    W = np.random.default_rng(1).normal(size=(4, 9))
    got = nn.functional.linear(rows[4:20], torch.as_tensor(W)).numpy()
    np.testing.assert_allclose(got, dense[4:20] @ W.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        rows.row_sq_norms().numpy(), (dense**2).sum(1), rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(
        rows[:10].gram(rows[10:]).numpy(), dense[:10] @ dense[10:].T, atol=1e-12
    )
    assert len(rows) == 30 and rows.shape == (30, 9)
    model = as_torch_model(nn.Linear(9, 2).double(), loss=nn.CrossEntropyLoss())
    for given in (X.tocoo(), torch.as_tensor(dense).to_sparse(), rows):
        got = model.prepare_X(given)
        assert isinstance(got, K.SparseRows)
        np.testing.assert_array_equal(got.to_dense().numpy(), dense)


def _record_densified(monkeypatch):
    """Record the shape of every chunk of sparse rows that is densified."""
    shapes = []
    original = K.SparseRows.to_dense

    def to_dense(self):
        shapes.append(self.shape)
        return original(self)

    monkeypatch.setattr(K.SparseRows, "to_dense", to_dense)
    return shapes


def test_linear_models_never_densify(monkeypatch):
    shapes = _record_densified(monkeypatch)
    X, y, Xv, yv = _sparse_problem()
    clf = LogisticRegression().fit(X, y)
    for method in ("ip", "self_influence", "influence_function"):
        compute_influence(clf, X, y, Xv, yv, method=method)
    assert shapes == []


def test_no_chunk_beyond_the_bound_is_densified(monkeypatch):
    import skinfluence._kernels._rows as kernels_impl

    # 60 float64 features: 480 bytes a row, so 5 rows per densified chunk
    monkeypatch.setattr(kernels_impl, "DENSE_CHUNK_BYTES", 5 * 60 * 8)
    shapes = _record_densified(monkeypatch)
    X, y, Xv, yv = _sparse_problem()
    model = as_torch_model(_TanhFirst().double(), loss=nn.CrossEntropyLoss())
    compute_influence(model, X, y, Xv, yv, method="ip", batch_size=1000)
    compute_influence(
        model, X, y, method=SelfInfluence(use_checkpoints=False), batch_size=1000
    )
    assert shapes, "the module densifies its input: chunks must have been densified"
    assert max(rows for rows, _ in shapes) <= 5


def test_wide_sparse_matrix_in_bounded_memory():
    """200,000 features: X dense would be 3.2 GB; scoring stays far below."""
    code = textwrap.dedent(
        """
        import resource
        import numpy as np, scipy.sparse as sp, torch
        torch.set_num_threads(1)
        from sklearn.linear_model import LogisticRegression
        from skinfluence import compute_influence
        rng = np.random.default_rng(0)
        n, d = 2000, 200_000
        X = sp.csr_matrix(
            (rng.normal(size=4 * n), (np.repeat(np.arange(n), 4),
             rng.integers(0, d, 4 * n))), shape=(n, d))
        y = (X @ rng.normal(size=d) > 0).astype(int)
        clf = LogisticRegression().fit(X, y)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for m in ("ip", "self_influence"):
            compute_influence(clf, X, y, X[:300], y[:300], method=m)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grown // 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    grown_mb = int(out.stdout.split()[-1])
    assert grown_mb < 400, f"peak memory grew by {grown_mb} MB"
