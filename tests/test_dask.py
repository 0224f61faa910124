"""compute_influence on dask Arrays and DataFrames, and the cleaned Parquet.

The reference is the in-memory path on the same rows. In this process (the
synchronous scheduler) the Dask scores must equal it bit for bit when every
block starts at a multiple of ``batch_size``; on the session's
``LocalCluster`` (two single-threaded worker processes, ``dask_client`` in
conftest.py) to 1e-12 relative, as every float compared across processes:
another process may sum in another order (its BLAS kernels, the alignment
of its buffers). With other block boundaries, 1e-6.
"""

import numpy as np
import pandas as pd
import pytest
import torch

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
dask = pytest.importorskip("dask")
pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skinfluence import (  # noqa: E402
    InfluenceFilter,
    Method,
    compute_influence,
    methods,
    signals,
)
from skinfluence import dask as skd  # noqa: E402
from skinfluence.models import as_torch_model  # noqa: E402

N, D, BATCH = 240, 4, 40
ALIGNED = (80, 80, 40, 40)  # every block starts at a multiple of BATCH
UNEVEN = (50, 90, 17, 83)


class Net(torch.nn.Module):
    """A torch module defined in a test file: it must reach the workers."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(D, 6)
        self.out = torch.nn.Linear(6, 3)

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X)))


def assert_close_across_processes(got, ref):
    """Equal to 1e-12 relative to the largest score (float64, other process)."""
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def _data(n=N, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, D))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    flip = rng.rand(n) < 0.15
    y[flip] = rng.randint(0, 3, size=flip.sum())
    return X, y


@pytest.fixture(scope="module")
def problem():
    """A 3-class torch model trained by a few SGD steps, with checkpoints."""
    X, y = _data()
    X_val, y_val = _data(60, seed=1)
    torch.manual_seed(0)
    net = Net().double()
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    checkpoints = []
    for _ in range(4):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
        checkpoints.append(
            ({k: p.detach().clone() for k, p in net.named_parameters()}, 0.3)
        )
    model = as_torch_model(
        net,
        loss=torch.nn.CrossEntropyLoss(),
        checkpoints=checkpoints,
        weight_decay=1e-2,
    )
    return model, X, y, X_val, y_val


METHODS = {
    "ip": "ip",
    "ip_ensemble": methods.IPEnsemble(n_members=3, max_dropout=0.2),
    "tracin": "tracin",
    "if_exact": methods.InfluenceFunction(solver="exact", damping=0.01),
    "if_cg": methods.InfluenceFunction(solver="cg", damping=0.01),
    "self_influence": "self_influence",
    "loss": "loss",
    **{f"signal_{name}": f"signal_{name}" for name in signals.SIGNALS},
    "signal_mai_projected": signals.SignalMAI(projection_dim=8),
}


@pytest.fixture(params=["sync", "cluster"])
def scheduler(request):
    """Compute on the synchronous scheduler, or on the session's LocalCluster."""
    if request.param == "sync":
        with dask.config.set(scheduler="sync"):
            yield None
    else:
        client = request.getfixturevalue("dask_client")
        with dask.config.set(scheduler=client):
            yield client


@pytest.mark.parametrize("name", list(METHODS))
def test_array_scores_equal_in_memory(problem, scheduler, name):
    model, X, y, X_val, y_val = problem
    method = METHODS[name]
    ref = compute_influence(
        model, X, y, X_val, y_val, method=method, batch_size=BATCH, random_state=3
    )
    for chunks in (ALIGNED, UNEVEN):
        Xd = da.from_array(X, chunks=(chunks, D))
        yd = da.from_array(y, chunks=(chunks,))
        lazy = compute_influence(
            model, Xd, yd, X_val, y_val, method=method, batch_size=BATCH, random_state=3
        )
        assert isinstance(lazy, da.Array) and lazy.chunks == (chunks,)
        got = lazy.compute()
        if chunks == ALIGNED and name == "if_cg":  # an iterative solve (tol 1e-6)
            # in another process: its rounding differs, the solution within tol
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
        elif chunks == ALIGNED:  # the same per-block computation, in any process
            assert_close_across_processes(got, ref)
        else:
            np.testing.assert_allclose(
                got, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max()
            )


def test_dataframe_scores_equal_in_memory(scheduler):
    """A Pipeline on DataFrame partitions: a Series with the frame's index."""
    X, y = _data()
    X_val, y_val = _data(60, seed=1)
    cols = [f"x{i}" for i in range(D)]
    frame = pd.DataFrame(X, columns=cols).assign(label=y)
    frame.index = frame.index * 10  # an index that is not the row position
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[cols], y)
    val = pd.DataFrame(X_val, columns=cols)
    ref = compute_influence(pipe, frame[cols], y, val, y_val, batch_size=BATCH)
    ddf = dd.from_pandas(frame, npartitions=3, sort=False)
    lazy = compute_influence(
        pipe, ddf[cols], ddf["label"], val, y_val, batch_size=BATCH
    )
    got = lazy.compute()
    assert got.index.equals(frame.index)
    np.testing.assert_allclose(got.to_numpy(), ref, rtol=1e-6, atol=1e-12)


def test_random_does_not_depend_on_chunks(problem, scheduler):
    """The "random" draws per group of rows: the same whatever the blocks."""
    from skinfluence.dask import _spec as _dask

    model = problem[0]
    X, y = _data(3 * _dask.RANDOM_GROUP // 2 + 7, seed=2)

    def draws(rows, seed):
        Xd = da.from_array(X, chunks=(rows, D))
        return compute_influence(model, Xd, y, method="random", random_state=seed)

    a, b = draws(len(X), 5).compute(), draws(9000, 5).compute()
    # PCG64 integers to doubles: equal in any process (to 1e-12, as the rule is)
    assert_close_across_processes(a, b)
    assert 0 <= a.min() and a.max() < 1 and abs(a.mean() - 0.5) < 0.01
    assert not np.array_equal(draws(9000, 6).compute(), a)


def test_influence_function_from_a_sample(problem):
    """Above hessian_rows the Hessian is a sample's (plus the full penalty)."""
    model, X, y, X_val, y_val = problem
    method = methods.InfluenceFunction(solver="exact", damping=0.01)
    ref = compute_influence(model, X, y, X_val, y_val, method=method)
    Xd = da.from_array(X, chunks=(60, D))
    with dask.config.set(scheduler="sync"):
        full = compute_influence(model, Xd, y, X_val, y_val, method=method).compute()
        sample = skd.compute_influence(
            model, Xd, y, X_val, y_val, method=method, hessian_rows=200, random_state=0
        ).compute()
    assert_close_across_processes(full, ref)
    assert not np.array_equal(sample, ref)
    assert np.corrcoef(sample, ref)[0, 1] > 0.99


def test_hessian_sample_is_bounded_in_bytes(problem, monkeypatch):
    """hessian_bytes bounds the rows on the client, as read and as the model
    sees them: float64 X (4 columns) and int64 y, twice, 80 bytes a row."""
    model, X, y, X_val, y_val = problem
    seen = []
    real = methods.InfluenceFunction.inverse_hvp

    def spy(self, model, v, X, y, **kw):
        seen.append((X, y))
        return real(self, model, v, X, y, **kw)

    monkeypatch.setattr(methods.InfluenceFunction, "inverse_hvp", spy)
    method = methods.InfluenceFunction(solver="exact", damping=0.01)
    row = 2 * (D * 8 + 8)
    budget = 150 * row + row - 1
    Xd = da.from_array(X, chunks=(60, D))
    with dask.config.set(scheduler="sync"):
        skd.compute_influence(
            model, Xd, y, X_val, y_val, method=method, hessian_bytes=budget
        )
        ((Xs, ys),) = seen
        assert (
            len(Xs) == 150
            and Xs.nbytes + ys.nbytes + X[:150].nbytes + y[:150].nbytes <= budget
        )
        rows = {tuple(r) for r in X.tolist()}
        assert len({tuple(r) for r in Xs.tolist()} & rows) == 150  # distinct rows of X
        with pytest.raises(ValueError, match="less than one training row"):
            skd.compute_influence(
                model, Xd, y, X_val, y_val, method=method, hessian_bytes=row - 1
            )
        with pytest.raises(ValueError, match="hessian_bytes must be"):
            skd.compute_influence(model, Xd, y, X_val, y_val, hessian_bytes=0)


@pytest.mark.filterwarnings("ignore:prune_ratio=0.15 leaves")  # relabelling
@pytest.mark.parametrize("action", ["remove", "reweight", "relabel"])
def test_parquet_holds_the_rows_the_filter_keeps(dask_client, tmp_path, action):
    """Workers write the rows InfluenceFilter(X_val=...) keeps, relabels or weights."""
    X, y = _data(400, seed=4)
    X_val, y_val = _data(80, seed=5)
    flt = InfluenceFilter(
        LogisticRegression(),
        prune_ratio=0.15,
        action=action,
        batch_size=BATCH,
        random_state=0,
    ).fit(X, y, X_val=X_val, y_val=y_val)
    cols = [f"x{i}" for i in range(D)]
    ddf = dd.from_pandas(pd.DataFrame(X, columns=cols).assign(label=y), npartitions=5)
    clf = LogisticRegression().fit(X, y)
    with dask.config.set(scheduler=dask_client):
        if action == "relabel":
            scores, new = skd.relabel_effects(
                clf, ddf[cols], ddf["label"], X_val, y_val, batch_size=BATCH
            )
        else:
            scores, new = (
                compute_influence(
                    clf, ddf[cols], ddf["label"], X_val, y_val, batch_size=BATCH
                ),
                None,
            )
        written = skd.write_cleaned(
            ddf,
            scores,
            tmp_path / "clean",
            prune_ratio=0.15,
            action=action,
            label="label",
            new_labels=new,
        )
        got = scores.compute().to_numpy()
    # the workers' scores are the filter's to 1e-12 (another process), and
    # the choice is further from a tie than that: the same rows, by construction
    ref = flt.influence_
    assert_close_across_processes(got, ref)
    k, scale = 60, np.abs(ref).max()  # floor(0.15 * 400)
    kth, next_ = np.sort(ref)[k - 1 : k + 1]
    assert next_ - kth > 1e-9 * scale
    if action == "relabel":
        assert np.abs(ref[ref <= kth]).min() > 1e-9 * scale
    out = pd.read_parquet(tmp_path / "clean").sort_index()
    assert written.n_rows == 400
    # row indices and integer labels compare exactly (the choice is clear of a
    # tie, asserted above); the features written by the workers to 1e-12
    np.testing.assert_array_equal(out.index, np.flatnonzero(flt.sample_mask_))
    np.testing.assert_allclose(out[cols].to_numpy(), X[flt.sample_mask_], rtol=1e-12)
    np.testing.assert_array_equal(out["label"], flt.y_fit_[flt.sample_mask_])
    if action == "reweight":
        np.testing.assert_allclose(
            out["sample_weight"], flt.sample_weight_[flt.sample_mask_], rtol=1e-12
        )
    if action == "relabel":  # the filter's influence_ is the relabel effect
        Xd = da.from_array(X, chunks=(80, D))
        with dask.config.set(scheduler="sync"):
            effect, _ = skd.relabel_effects(clf, Xd, y, X_val, y_val, batch_size=BATCH)
            assert_close_across_processes(effect.compute(), flt.influence_)


@pytest.mark.parametrize("seed", range(4))
def test_exact_selection_with_ties(monkeypatch, seed):
    """k-th smallest and the k lowest (ties by position) as numpy sorts them."""
    from skinfluence.dask import _selection as _dask

    monkeypatch.setattr(_dask, "GATHER_LIMIT", 3)  # force the radix passes
    rng = np.random.RandomState(seed)
    s = np.round(rng.normal(size=500), 1)  # many ties
    s[rng.rand(500) < 0.1] = -0.0
    s[rng.rand(500) < 0.1] = 0.0
    lazy = da.from_array(s, chunks=77)
    order = np.argsort(s, kind="stable")
    with dask.config.set(scheduler="sync"):
        for k in (0, 1, 37, 250, 499, 500):
            if k:
                assert skd.kth_smallest(lazy, k) == np.sort(s)[k - 1]
            want = np.zeros(500, dtype=bool)
            want[order[:k]] = True
            np.testing.assert_array_equal(skd.lowest_mask(lazy, k).compute(), want)


class _Recording:
    """The synchronous scheduler, recording what each computation returns.

    What a scheduler's ``get`` returns is what reaches the client: per
    computation, the number of results and their pickled bytes.
    """

    def __init__(self):
        self.results = []  # (number of keys, pickled bytes) per computation

    def __call__(self, dsk, keys, **kwargs):
        import pickle

        out = dask.get(dsk, keys, **kwargs)
        flat = list(dask.core.flatten(keys)) if isinstance(keys, list) else [keys]
        self.results.append((len(flat), len(pickle.dumps(out))))
        return out


def test_selection_client_memory_is_flat_in_the_blocks(monkeypatch):
    """2,000 blocks: each pass brings one result (at most a 512 KiB histogram)
    to the client, the same as with 200 blocks, and the exact answers."""
    from skinfluence.dask import _selection as _dask

    monkeypatch.setattr(_dask, "GATHER_LIMIT", 2000)  # force a radix pass
    rng = np.random.RandomState(7)
    s = np.round(rng.normal(size=6000), 1)  # ties, within and across blocks
    s[rng.rand(6000) < 0.1] = -0.0
    s[rng.rand(6000) < 0.1] = 0.0
    order = np.argsort(s, kind="stable")
    k = 3000  # -0.0 and 0.0 (rows 2337 to 3689 in order) are tied past it
    want = np.zeros(len(s), dtype=bool)
    want[order[:k]] = True
    seen = {}
    for blocks in (200, 2000):
        with dask.config.set(scheduler="sync"):
            lazy = da.from_array(s, chunks=len(s) // blocks).persist()
        assert lazy.numblocks[0] == blocks
        rec = _Recording()
        with dask.config.set(scheduler=rec):
            assert skd.kth_smallest(lazy, 3700) == np.partition(s, 3699)[3699]
            mask = skd.lowest_mask(lazy, k)
        assert rec.results and all(n_keys == 1 for n_keys, _ in rec.results)
        assert max(size for _, size in rec.results) < 2**19 + 2**12
        seen[blocks] = rec.results
        with dask.config.set(scheduler="sync"):
            np.testing.assert_array_equal(mask.compute(), want)
    assert seen[200] == seen[2000]  # flat: the same results, whatever the blocks


def test_write_cleaned_selects_once_per_action(monkeypatch, tmp_path):
    """One selection and one pass per radix step, whatever the action: the
    scores persisted, one count, one gathering, one write (with its count)."""
    from skinfluence.dask import _write as _dask

    rng = np.random.RandomState(3)
    s = np.round(rng.normal(size=300), 1)  # ties at the threshold
    k = 45  # floor(0.15 * 300)
    frame = pd.DataFrame({"x": np.arange(300.0), "label": rng.randint(0, 2, 300)})
    ddf = dd.from_pandas(frame, npartitions=6)
    scores = dd.from_pandas(pd.Series(s, name="influence"), npartitions=6)
    new = dd.from_pandas(pd.Series(1 - frame["label"], name="new"), npartitions=6)
    order = np.argsort(s, kind="stable")
    acted = np.zeros(300, dtype=bool)
    acted[order[:k]] = True
    selections = []
    real = _dask._select
    monkeypatch.setattr(
        _dask, "_select", lambda *a, **kw: selections.append(1) or real(*a, **kw)
    )
    for action in ("remove", "reweight", "relabel"):
        rec, selections[:] = _Recording(), []
        with dask.config.set(scheduler=rec):
            written = skd.write_cleaned(
                ddf,
                scores,
                tmp_path / action,
                prune_ratio=0.15,
                action=action,
                label="label",
                new_labels=new,
            )
        assert len(selections) == 1
        assert len(rec.results) == 4, action  # persist, count, gather, write
        out = pd.read_parquet(tmp_path / action).sort_index()
        if action == "remove":
            np.testing.assert_array_equal(out.index, np.flatnonzero(~acted))
            assert written.n_acted == k
        elif action == "reweight":  # 0 at the lowest, 1 at the (k + 1)-th
            edge, low = np.sort(s)[k], s.min()
            w = np.where(acted, 1 - (edge - s) / (edge - low), 1.0)
            np.testing.assert_allclose(out["sample_weight"], w[w > 0], rtol=1e-15)
            assert written.n_acted == np.sum(w < 1)
        else:
            flip = acted & (s < 0)
            label = np.where(flip, 1 - frame["label"], frame["label"])
            np.testing.assert_array_equal(out["label"], label)
            assert written.n_acted == flip.sum()
        assert written.threshold == np.sort(s)[k - 1]


def test_spec_is_loaded_once_per_worker_and_torch_runs_one_thread(problem, dask_client):
    from skinfluence.dask import _spec as _dask

    model, X, y, X_val, y_val = problem
    for worker in dask_client.scheduler_info()["workers"]:  # in the task threads
        dask_client.submit(
            torch.set_num_threads, 2, workers=[worker], pure=False
        ).result()
    before = dask_client.run(lambda: dict(_dask.LOADS))
    Xd = da.from_array(X, chunks=(20, D))  # 12 blocks on 2 workers
    with dask.config.set(scheduler=dask_client):
        compute_influence(model, Xd, y, X_val, y_val, method="tracin").compute()
    loads = dask_client.run(lambda: dict(_dask.LOADS))
    threads = dask_client.run(lambda: {k: sorted(v) for k, v in _dask.THREADS.items()})
    for worker, counts in loads.items():
        new = {t: c for t, c in counts.items() if t not in before[worker]}
        assert list(new.values()) == [1]
        (token,) = new
        assert threads[worker][token] == [1]


def test_module_defined_in_a_script_travels_by_value(dask_client):
    """A module class from ``__main__`` (a user's script) is pickled by value."""

    def init(self):
        torch.nn.Module.__init__(self)
        self.lin = torch.nn.Linear(D, 3)

    def forward(self, X):
        return self.lin(X)

    init.__module__ = forward.__module__ = "__main__"
    ScriptNet = type(
        "ScriptNet",
        (torch.nn.Module,),
        {"__init__": init, "forward": forward, "__module__": "__main__"},
    )
    torch.manual_seed(0)
    model = as_torch_model(ScriptNet().double(), loss=torch.nn.CrossEntropyLoss())
    X, y = _data()
    ref = compute_influence(model, X, y, X[:30], y[:30], batch_size=BATCH)
    with dask.config.set(scheduler=dask_client):
        got = compute_influence(
            model, da.from_array(X, chunks=(80, D)), y, X[:30], y[:30], batch_size=BATCH
        ).compute()
    assert_close_across_processes(got, ref)


class _WholeSet(Method):
    _key = "whole_set_test"
    needs_objective = False

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        return torch.zeros(len(X))


def test_refusals(problem):
    model, X, y, X_val, y_val = problem
    Xd = da.from_array(X, chunks=(80, D))
    with pytest.raises(NotImplementedError, match="block by block"):
        compute_influence(model, Xd, y, method=_WholeSet())
    with pytest.raises(ValueError, match="different lengths"):
        compute_influence(model, Xd, y[:-1], X_val, y_val)
    with pytest.raises(ValueError, match="validation rows"):
        compute_influence(model, Xd, y)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        compute_influence(model, Xd[Xd[:, 0] > 0], y, X_val, y_val)


def test_threaded_scheduler_scores_blocks_one_at_a_time():
    """torch.func's forward-mode levels are global to a process: blocks scored
    by threads of one process must not interleave (they raised 'no level
    exists' / 'invalid index' before)."""
    import dask
    import dask.array as da
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from skinfluence import compute_influence

    X, y = make_classification(2000, 6, random_state=0)
    clf = LogisticRegression().fit(X[:1500], y[:1500])
    ref = compute_influence(clf, X[:1500], y[:1500], X[1500:], y[1500:])
    with dask.config.set(scheduler="threads", num_workers=4):
        got = compute_influence(
            clf, da.from_array(X[:1500], chunks=50), da.from_array(y[:1500], chunks=50),
            X[1500:], y[1500:],
        ).compute()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
