"""Boosted trees as linear models over leaf indicators, checked per library
against the libraries' own predictions and leaf values, brute-force autograd
over the leaf values, a by-hand BoostIn, and exact refits of the leaves."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.stats import spearmanr
from sklearn.compose import make_column_transformer
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skinfluence import InfluenceFilter, compute_influence
from skinfluence.models import as_torch_model

lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")


def _hgb(**kw):
    kw = {"max_iter": 4, "max_leaf_nodes": 5, "early_stopping": False, "random_state": 0, **kw}
    return HistGradientBoostingClassifier(**kw)


def _lgb(**kw):
    kw = {"n_estimators": 4, "num_leaves": 5, "min_child_samples": 5, "verbose": -1,
          "random_state": 0, **kw}
    return lgb.LGBMClassifier(**kw)


def _xgb(**kw):
    return xgb.XGBClassifier(**{"n_estimators": 4, "max_depth": 2, "min_child_weight": 0, **kw})


LIBRARIES = {"hgb": _hgb, "lightgbm": _lgb, "xgboost": _xgb}


def _data(k, n=240, seed=0):
    X, y = make_classification(
        n, 5, n_classes=k, n_informative=3, weights=[0.5, 0.3, 0.2][:k] if k > 2 else None,
        random_state=seed,
    )
    return X, y


def _leaf_table(est, X):
    """Per tree, the library's own leaf id of each row and each leaf's value."""
    if isinstance(est, HistGradientBoostingClassifier):
        pytest.skip("scikit-learn has no public leaf accessor")
    if isinstance(est, lgb.LGBMClassifier):
        b = est.booster_
        ids = b.predict(X, pred_leaf=True)
        leaf = lambda t, i: b.get_leaf_output(t, int(i))  # noqa: E731
    else:
        b = est.get_booster()
        ids = b.predict(xgb.DMatrix(X), pred_leaf=True).astype(int)
        frame = b.trees_to_dataframe()
        vals = {(r.Tree, r.Node): r.Gain for r in frame.itertuples() if r.Feature == "Leaf"}
        leaf = lambda t, i: vals[(t, int(i))]  # noqa: E731
    return ids, leaf


def _raw(est, X):
    if isinstance(est, HistGradientBoostingClassifier):
        return est.decision_function(X).reshape(len(X), -1)
    if isinstance(est, lgb.LGBMClassifier):
        return est.predict(X, raw_score=True).reshape(len(X), -1)
    return est.get_booster().predict(xgb.DMatrix(X), output_margin=True).reshape(len(X), -1)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("lib", LIBRARIES)
def test_the_leaf_model_reproduces_the_raw_scores(lib, k):
    X, y = _data(k)
    X[::9, 1] = np.nan  # missing values go where the library sends them
    est = LIBRARIES[lib]().fit(X, y)
    model = as_torch_model(est)
    out = model.outputs(model.params, model.prepare_X(X)).detach().numpy()
    assert_allclose(out.reshape(len(X), -1), _raw(est, X), atol=1e-6)


@pytest.mark.parametrize("lib", LIBRARIES)
def test_a_pipeline_with_a_column_transformer(lib):
    rng = np.random.default_rng(0)
    X, y = _data(2)
    cat = rng.integers(0, 3, size=(len(X), 1)).astype(str)
    Xa = np.hstack([X.astype(object), cat])
    pre = make_column_transformer(
        (StandardScaler(), list(range(5))), (OneHotEncoder(), [5]), sparse_threshold=0
    )
    pipe = make_pipeline(pre, LIBRARIES[lib]()).fit(Xa, y)
    model = as_torch_model(pipe)
    out = model.outputs(model.params, model.prepare_X(Xa)).detach().numpy().reshape(-1)
    assert_allclose(out, _raw(pipe[-1], pipe[:-1].transform(Xa)).reshape(-1), atol=1e-6)


def test_native_categorical_splits_of_hist_gradient_boosting():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    X, y = _data(2)
    frame = pd.DataFrame(X, columns=list("abcde"))
    frame["c"] = pd.Categorical(rng.choice(["x", "y", "z"], len(X)))
    y = (y + (frame["c"] == "x")) % 2
    est = _hgb(categorical_features="from_dtype").fit(frame, y)
    model = as_torch_model(est)
    out = model.outputs(model.params, model.prepare_X(frame)).detach().numpy().reshape(-1)
    assert_allclose(out, est.decision_function(frame), atol=1e-9)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("lib", LIBRARIES)
def test_the_leaves_are_newton_steps_of_the_stated_loss(lib, k):
    """-eta G / (H + lambda) over each leaf's rows, at the raw score before
    its round, reproduces the library's leaf values: the derivatives, the
    Hessian factor, the penalty and the starting score BoostIn uses are the
    library's."""
    from skinfluence.methods._boostin import _grad_hess, _init_score, _Staging

    X, y = _data(k)
    est = LIBRARIES[lib]().fit(X, y)
    model = as_torch_model(est)
    ens = model.trees
    ids, yt = model.prepare_X(X).long(), model.prepare_y(y)
    stage = _Staging(ens, model.params["leaf_values"].double(), _init_score(ens, yt))
    g, h = _grad_hess(stage.raw_before_rounds(ids), yt, ens.hessian_factor)
    L = len(stage.values)
    G = torch.zeros(L, dtype=torch.float64).index_add_(0, ids.reshape(-1), g.reshape(-1))
    H = torch.zeros(L, dtype=torch.float64).index_add_(0, ids.reshape(-1), h.reshape(-1))
    assert_allclose(-ens.learning_rate * G / (H + ens.l2), stage.values, atol=1e-6)


def _indicators(est, X):
    """Dense one-hot leaf membership (n, n_leaves) and leaf values, from the
    library's own leaf ids and outputs (binary models)."""
    ids, leaf = _leaf_table(est, X)
    cols, values = [], []
    for t in range(ids.shape[1]):
        for i in np.unique(ids[:, t]):
            cols.append((ids[:, t] == i).astype(float))
            values.append(leaf(t, i))
    return np.stack(cols, 1), np.array(values)


@pytest.mark.parametrize("lib", ["lightgbm", "xgboost"])
def test_ip_and_influence_function_equal_autograd_over_the_leaf_values(lib):
    X, y = _data(2)
    tr, va = slice(0, 180), slice(180, None)
    est = LIBRARIES[lib]().fit(X[tr], y[tr])
    A, v = _indicators(est, X)
    base = _raw(est, X).reshape(-1) - A @ v
    theta = torch.tensor(v, requires_grad=True)
    At, yt = torch.tensor(A), torch.tensor(y, dtype=torch.float64)

    def losses(th, rows):
        z = At[rows] @ th + torch.tensor(base[rows])
        return torch.nn.functional.binary_cross_entropy_with_logits(z, yt[rows], reduction="none")

    (gJ,) = torch.autograd.grad(losses(theta, va).mean(), theta)
    per_row = torch.stack(
        [torch.autograd.grad(losses(theta, [i])[0], theta)[0] for i in range(180)]
    )
    ip = compute_influence(est, X[tr], y[tr], X[va], y[va], method="ip")
    assert_allclose(ip, (per_row @ gJ).numpy(), rtol=1e-6, atol=1e-12)

    n, lam = 180, est.get_params().get("reg_lambda") or 0.0
    if lib == "xgboost" and est.get_params().get("reg_lambda") is None:
        lam = 1.0
    hess = torch.autograd.functional.hessian(lambda th: losses(th, tr).mean(), theta)
    C = hess + (lam / n) * torch.eye(len(v), dtype=torch.float64)
    from skinfluence.methods import InfluenceFunction

    method = InfluenceFunction(solver="exact", damping=1e-3)
    got = compute_influence(est, X[tr], y[tr], X[va], y[va], method=method)
    # the damping the method adds, read off a second call with ten times it
    method10 = InfluenceFunction(solver="exact", damping=1e-2)
    got10 = compute_influence(est, X[tr], y[tr], X[va], y[va], method=method10)
    assert np.all(np.isfinite(got)) and not np.allclose(got, got10)
    scale = torch.trace(C) / len(v)  # damping relative to the curvature's scale
    for s, d in [(got, 1e-3), (got10, 1e-2)]:
        for lam_d in (d, d * float(scale)):  # absolute or relative damping
            ref = per_row @ torch.linalg.solve(C + lam_d * torch.eye(len(v), dtype=torch.float64), gJ)
            if np.allclose(s, ref.numpy(), rtol=1e-5, atol=1e-12):
                break
        else:
            raise AssertionError("influence_function differs from the dense solve")


def _boostin_by_hand(est, X, y, Xv, yv, newton):
    """BoostIn as Brophy et al. write it, one tree, leaf and row at a time
    (binary log loss, utility objective: the mean validation loss)."""
    ids, leaf = _leaf_table(est, X)
    ids_v, _ = _leaf_table(est, Xv)
    T = ids.shape[1]
    eta = est.get_params()["learning_rate"] or 0.3
    lam = est.get_params().get("reg_lambda")
    lam = (1.0 if lam is None else lam) if isinstance(est, xgb.XGBClassifier) else (lam or 0.0)
    values = np.array([[leaf(t, i) for i in ids[:, t]] for t in range(T)]).T
    values_v = np.array([[leaf(t, i) for i in ids_v[:, t]] for t in range(T)]).T
    base = _raw(est, X).reshape(-1) - values.sum(1)
    start = base.copy()
    start_v = _raw(est, Xv).reshape(-1) - values_v.sum(1)
    if isinstance(est, lgb.LGBMClassifier):  # the first tree holds log-odds(mean y)
        init = np.log(y.mean() / (1 - y.mean()))
        start, start_v = start + init, start_v + init
        values[:, 0] -= init
        values_v[:, 0] -= init
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    F, Fv = start.copy(), start_v.copy()
    scores = np.zeros(len(X))
    for t in range(T):
        p, pv = sig(F), sig(Fv)
        g, h = p - y, p * (1 - p)
        gv = (pv - yv) / len(yv)  # d mean-loss / dF of each validation row
        for i in np.unique(ids[:, t]):
            rows = ids[:, t] == i
            H = h[rows].sum()
            w = values[rows, t][0] / (eta if newton else 1.0)
            dv = -eta * (g[rows] + w * h[rows]) / (H + lam)  # d leaf / d weight of each row
            dJ = gv[ids_v[:, t] == i].sum()
            scores[rows] += -dJ * dv
        F, Fv = F + values[:, t], Fv + values_v[:, t]
    return scores


@pytest.mark.parametrize("leaf_value", ["shrunk", "newton"])
@pytest.mark.parametrize("lib", ["lightgbm", "xgboost"])
def test_boostin_equals_a_by_hand_implementation(lib, leaf_value):
    from skinfluence.methods import BoostIn

    X, y = _data(2, n=200, seed=3)
    est = LIBRARIES[lib](n_estimators=3).fit(X[:150], y[:150])
    method = BoostIn(leaf_value=leaf_value)
    got = compute_influence(est, X[:150], y[:150], X[150:], y[150:], method=method)
    ref = _boostin_by_hand(est, X[:150], y[:150], X[150:], y[150:], leaf_value == "newton")
    assert_allclose(got, ref, rtol=1e-6, atol=1e-12)


def test_influence_function_ranks_rows_like_exact_refits_of_the_leaves():
    """Structure fixed, the leaf values refitted exactly (Newton) without each
    row: the change of the validation loss ranks like the influence scores."""
    X, y = _data(2, n=160, seed=5)
    tr, va = slice(0, 100), slice(100, None)
    est = _xgb(n_estimators=3, reg_lambda=1.0).fit(X[tr], y[tr])
    A, v = _indicators(est, X)
    base = _raw(est, X).reshape(-1) - A @ v
    n, lam = 100, 1.0

    def fit(keep):
        th = v.copy()
        for _ in range(50):  # Newton on sum of losses + lam/2 |theta|^2
            p = 1 / (1 + np.exp(-(A[tr][keep] @ th + base[tr][keep])))
            g = A[tr][keep].T @ (p - y[tr][keep]) + lam * th
            H = (A[tr][keep] * (p * (1 - p))[:, None]).T @ A[tr][keep] + lam * np.eye(len(th))
            th = th - np.linalg.solve(H, g)
        return th

    def val_loss(th):
        z = A[va] @ th + base[va]
        return np.mean(np.logaddexp(0, z) - y[va] * z)

    full = fit(np.ones(n, bool))
    change = np.array([val_loss(fit(np.arange(n) != i)) - val_loss(full) for i in range(n)])
    # the model at the refitted optimum, scored by the influence function
    model = as_torch_model(est)
    model.params["leaf_values"].copy_(torch.tensor(_reorder(est, model, full, X[tr])))
    from skinfluence.methods import InfluenceFunction

    s = compute_influence(
        model, X[tr], y[tr], X[va], y[va], method=InfluenceFunction(solver="exact", damping=1e-8)
    )
    # removing a beneficial row (high score) raises the validation loss
    assert spearmanr(s, change).statistic >= 0.95


def _reorder(est, model, theta, X):
    """Leaf values ``theta`` (in :func:`_indicators` order) in the model's order."""
    ids, _ = _leaf_table(est, X)
    gids = model.prepare_X(X).long().numpy()
    out = model.params["leaf_values"].detach().numpy().copy()
    j = 0
    for t in range(ids.shape[1]):
        for i in np.unique(ids[:, t]):
            out[gids[ids[:, t] == i, t][0]] = theta[j]
            j += 1
    return out


def test_the_filter_refits_the_trees_on_the_kept_rows():
    X, y = _data(2, n=300)
    flt = InfluenceFilter(_hgb(), prune_ratio=0.1, random_state=0).fit(X, y)
    ref = _hgb().fit(X[flt.sample_mask_], y[flt.sample_mask_])
    assert_allclose(flt.predict_proba(X), ref.predict_proba(X), atol=1e-12)
    assert (~flt.sample_mask_).sum() == len(flt.validation_indices_) + 24


def test_boostin_refuses_other_models_and_l1_leaves():
    from sklearn.linear_model import LogisticRegression

    X, y = _data(2)
    with pytest.raises(ValueError, match="boosted trees"):
        compute_influence(LogisticRegression().fit(X, y), X, y, X, y, method="boostin")
    est = _lgb(reg_alpha=0.5).fit(X, y)
    with pytest.raises(ValueError, match="L1 leaf penalty"):
        compute_influence(est, X, y, X, y, method="boostin")


def test_boostin_agrees_with_tree_influence_on_lightgbm():
    """The reference implementation (built from its source; not on PyPI in a
    form that builds), summed over the validation rows."""
    ti = pytest.importorskip("tree_influence.explainers")
    X, y = _data(2, n=500, seed=7)
    est = _lgb(n_estimators=20, num_leaves=7).fit(X[:400], y[:400])
    ref = ti.BoostIn().fit(est, X[:400], y[:400]).get_local_influence(X[400:], y[400:])
    got = compute_influence(est, X[:400], y[:400], X[400:], y[400:], method="boostin")
    ref = ref.sum(1) / 100
    assert got @ ref / np.linalg.norm(got) / np.linalg.norm(ref) >= 0.99
    assert_allclose(got, ref, rtol=1e-8, atol=1e-12)


def test_robustness_is_refused_before_any_training():
    X, y = _data(2)
    est = _hgb()
    with pytest.raises(ValueError, match="robustness objective attacks"):
        InfluenceFilter(est, objective="robustness").fit(X, y)
    assert not hasattr(est, "_predictors")  # the user's estimator untouched, nothing fitted
    with pytest.raises(ValueError, match="robustness objective attacks"):
        compute_influence(_lgb().fit(X, y), X, y, X, y, objective="robustness")


def test_what_the_libraries_do_behind_the_user_s_back_is_said():
    from skinfluence.methods import InfluenceFunction

    X, y = _data(2, n=300)
    tr, va = slice(0, 250), slice(250, None)
    # an L1 leaf penalty: no Hessian to invert
    est = _xgb(reg_alpha=0.5).fit(X[tr], y[tr])
    with pytest.raises(ValueError, match="L1 penalty on its leaf values"):
        compute_influence(est, X[tr], y[tr], X[va], y[va], method="influence_function")
    with pytest.raises(ValueError, match="L1 penalty on its leaf values"):
        InfluenceFilter(_lgb(reg_alpha=0.5), method=InfluenceFunction()).fit(X, y)
    # clipped leaves are not Newton steps
    est = _xgb(max_delta_step=0.1).fit(X[tr], y[tr])
    with pytest.raises(ValueError, match="max_delta_step=0.1 clips"):
        compute_influence(est, X[tr], y[tr], X[va], y[va], method="boostin")
    # row subsampling and early stopping: warned with the share
    est = _lgb(subsample=0.5, subsample_freq=1).fit(X[tr], y[tr])
    with pytest.warns(UserWarning, match="grew each tree on 50% of the rows"):
        compute_influence(est, X[tr], y[tr], X[va], y[va], method="boostin")
    est = _hgb(early_stopping=True, validation_fraction=0.2, max_iter=20).fit(X[tr], y[tr])
    with pytest.warns(UserWarning, match="held 20% of the rows out"):
        compute_influence(est, X[tr], y[tr], X[va], y[va], method="boostin")


def test_boostin_relabel_scores_keep_the_leaf_sums_at_the_true_labels():
    """By hand: the score with row i's label changed to c, every other
    quantity (leaf Hessian sums, starting score, validation gradients) as at
    the true labels, is the by-hand BoostIn's with g_i taken at label c."""
    from skinfluence._compute import relabel_influence

    X, y = _data(2, n=200, seed=3)
    est = _xgb(n_estimators=3).fit(X[:150], y[:150])
    got = relabel_influence(est, X[:150], y[:150], X[150:], y[150:], classes=[0, 1],
                            method="boostin")
    for c in (0, 1):
        # h does not depend on the label (log loss): only g moves, linearly in y
        s_true = _boostin_by_hand(est, X[:150], y[:150], X[150:], y[150:], False)
        s_flip = _boostin_by_hand_labels(est, X[:150], y[:150], np.full(150, c), X[150:], y[150:])
        assert_allclose(got[c], np.where(y[:150] == c, s_true, s_flip), rtol=1e-6, atol=1e-12)


def _boostin_by_hand_labels(est, X, y, labels, Xv, yv):
    """As _boostin_by_hand (shrunk leaf values), the leaves' sums at ``y`` and
    each row's own gradient at ``labels``."""
    ids, leaf = _leaf_table(est, X)
    ids_v, _ = _leaf_table(est, Xv)
    T = ids.shape[1]
    lam = est.get_params().get("reg_lambda")
    lam = 1.0 if lam is None else lam
    values = np.array([[leaf(t, i) for i in ids[:, t]] for t in range(T)]).T
    values_v = np.array([[leaf(t, i) for i in ids_v[:, t]] for t in range(T)]).T
    F = _raw(est, X).reshape(-1) - values.sum(1)
    Fv = _raw(est, Xv).reshape(-1) - values_v.sum(1)
    eta = est.get_params()["learning_rate"] or 0.3
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    scores = np.zeros(len(X))
    for t in range(T):
        p, pv = sig(F), sig(Fv)
        g, h = p - labels, p * (1 - p)
        gv = (pv - yv) / len(yv)
        for i in np.unique(ids[:, t]):
            rows = ids[:, t] == i
            dv = -eta * (g[rows] + values[rows, t][0] * h[rows]) / (h[rows].sum() + lam)
            scores[rows] += -gv[ids_v[:, t] == i].sum() * dv
        F, Fv = F + values[:, t], Fv + values_v[:, t]
    return scores


@pytest.mark.parametrize("method", ["ip", "influence_function", "self_influence"])
def test_trees_score_on_dask_row_blocks(method):
    """Leaf indices per block: the lazy scores equal the in-memory ones."""
    da = pytest.importorskip("dask.array")
    import dask

    X, y = _data(2, n=400)
    tr, va = slice(0, 300), slice(300, None)
    for est in (_hgb(), _lgb()):
        est.fit(X[tr], y[tr])
        ref = compute_influence(est, X[tr], y[tr], X[va], y[va], method=method)
        with dask.config.set(scheduler="sync"):
            lazy = compute_influence(
                est, da.from_array(X[tr], chunks=70), da.from_array(y[tr], chunks=70),
                X[va], y[va], method=method,
            )
            assert_allclose(lazy.compute(), ref, rtol=1e-12, atol=1e-15)


def test_trak_on_one_tree_equals_the_dense_formula():
    """One tree: its leaf indicators are orthogonal, so with proj_dim >= the
    number of leaves and no damping TRAK is -(g_J^T A^-1 grad f_i)(1 - p_i),
    A = sum_j grad f_j grad f_j^T / n (margin f = +-z), from the library's own
    leaves."""
    from skinfluence.methods import TRAK

    X, y = _data(2, n=300, seed=4)
    tr, va = slice(0, 240), slice(240, None)
    est = _lgb(n_estimators=1, num_leaves=6).fit(X[tr], y[tr])
    A, v = _indicators(est, X)
    z = _raw(est, X).reshape(-1)
    p = 1 / (1 + np.exp(-z))
    sign = np.where(y == 1, 1.0, -1.0)
    grad_f = sign[:, None] * A  # d margin / d leaf values, per row
    gJ = A[va].T @ (p[va] - y[va]) / 60  # d mean validation loss / d leaf values
    gram = grad_f[tr].T @ grad_f[tr] / 240
    expected = -(grad_f[tr] @ np.linalg.solve(gram, gJ)) * (1 - np.where(y == 1, p, 1 - p))[tr]
    got = compute_influence(est, X[tr], y[tr], X[va], y[va],
                            method=TRAK(proj_dim=16, damping=0.0), random_state=0)
    assert_allclose(got, expected, rtol=1e-6, atol=1e-12)


def test_tracin_runs_over_boosting_rounds():
    """TracIn over the rounds: sum_r eta <grad J(theta_r), grad l_i(theta_r)>,
    theta_r the leaf values of the trees of rounds <= r, by hand from the
    library's leaves (binary log loss)."""
    X, y = _data(2, n=260, seed=6)
    tr, va = slice(0, 200), slice(200, None)
    est = _lgb(n_estimators=3).fit(X[tr], y[tr])
    ids, leaf = _leaf_table(est, X)
    A, v = _indicators(est, X)  # columns: tree after tree
    tree_of_col = np.concatenate([np.full(len(np.unique(ids[:, t])), t) for t in range(3)])
    expected = np.zeros(200)
    for r in range(3):
        theta = np.where(tree_of_col <= r, v, 0.0)
        p = 1 / (1 + np.exp(-(A @ theta)))
        gJ = A[va].T @ (p[va] - y[va]) / 60
        expected += 0.1 * (A[tr] * (p[tr] - y[tr])[:, None]) @ gJ
    got = compute_influence(est, X[tr], y[tr], X[va], y[va], method="tracin")
    assert_allclose(got, expected, rtol=1e-6, atol=1e-12)
