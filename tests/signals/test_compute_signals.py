"""compute_signals on skorch nets, Pipelines and scikit-learn models, against brute force."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from _brute import per_row_grads, rel_err
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn
from torch.func import functional_call

from skinfluence import InfluenceFilter, compute_influence, compute_signals
from skinfluence.callbacks import TracInCheckpoints
from skinfluence.models import as_torch_model
from skinfluence.signals import SIGNALS, SignalAAI


def data(seed=0):
    X, y = make_classification(
        n_samples=90, n_features=5, n_informative=3, flip_y=0.1, random_state=seed
    )
    return X[:70], y[:70], X[70:], y[70:]


def make_net(double=True, **kw):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2))
    module = module.double() if double else module
    return NeuralNetClassifier(
        module,
        criterion=nn.CrossEntropyLoss,
        max_epochs=4,
        lr=0.2,
        batch_size=16,
        train_split=None,
        verbose=0,
        **kw,
    )


def brute(model, X, y, Xv, yv):
    """SI, AAI, MI and instability from per-row autograd loops over the checkpoints."""
    cks = model.checkpoint_params() or [(model.params, 1.0)]
    Xt, yt = model.prepare_X(X), model.prepare_y(y)
    Xvt, yvt = model.prepare_X(Xv), model.prepare_y(yv)
    grads = [per_row_grads(model, p, Xt, yt) for p, _ in cks]
    infl = sum(
        lr * g @ per_row_grads(model, p, Xvt, yvt).T
        for (p, lr), g in zip(cks, grads, strict=True)
    )
    sq = torch.stack([g.pow(2).sum(1) for g in grads])
    out = {
        "self_influence": sum(lr * s for (_, lr), s in zip(cks, sq, strict=True)),
        "aai": infl.abs().mean(1),
        "mi": -infl.sum(1),
    }
    if len(cks) > 1:
        out["instability"] = (sq[1:] - sq[:-1]).abs().mean(0)
    return out


def fit_by_hand(X, y, pipeline=False, **kw):
    """make_net with a TracInCheckpoints callback named "ck", fitted on (X, y)."""
    net = make_net(callbacks=[("ck", TracInCheckpoints())], **kw)
    return (make_pipeline(StandardScaler(), net) if pipeline else net).fit(X, y)


def by_hand(est, X, y, Xv, yv):
    """Signals of a net fitted by hand, from its callback's checkpoints.

    One autograd call per row on the net's module (functional_call and
    cross-entropy, not the package's model adapter); rows are transformed by
    the Pipeline's own steps.
    """
    net = est[-1] if hasattr(est, "steps") else est
    if net is not est:
        X, Xv = est[:-1].transform(X), est[:-1].transform(Xv)
    module = net.module_
    cks = [
        (ck.params, ck.learning_rate) for ck in dict(net.callbacks_)["ck"].checkpoints_
    ]

    def rows(params, X, y):
        out = []
        for i in range(len(X)):
            p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
            z = functional_call(module, p, (torch.as_tensor(X[i : i + 1]),))
            loss = nn.functional.cross_entropy(z, torch.as_tensor(y[i : i + 1]))
            g = torch.autograd.grad(loss, list(p.values()))
            margin = z.detach().log_softmax(1)[0]
            own = margin[y[i]].clone()
            margin[y[i]] = -math.inf
            out.append((torch.cat([gi.reshape(-1) for gi in g]), own - margin.max()))
        return torch.stack([g for g, _ in out]), torch.stack([m for _, m in out])

    grads = [(rows(p, X, y), rows(p, Xv, yv)[0], lr) for p, lr in cks]
    infl = sum(lr * g @ gv.T for (g, _), gv, lr in grads)
    sq = torch.stack([g.pow(2).sum(1) for (g, _), _, _ in grads])
    lrs = torch.tensor([lr for _, _, lr in grads], dtype=sq.dtype)
    return {
        "self_influence": (lrs[:, None] * sq).sum(0),
        "aai": infl.abs().mean(1),
        "mi": -infl.sum(1),
        "aum": -torch.stack([m for (_, m), _, _ in grads]).mean(0),
        "instability": (sq[1:] - sq[:-1]).abs().mean(0),
    }


def test_an_unfitted_net_is_fitted_on_a_clone_with_checkpoints():
    X, y, Xv, yv = data()
    net = make_net()
    df = compute_signals(net, X, y, Xv, yv, signals=list(SIGNALS), batch_size=32)
    assert list(df.columns) == list(SIGNALS) and df.shape == (70, len(SIGNALS))
    assert df.dtypes.eq(np.float64).all() and np.isfinite(df.to_numpy()).all()
    assert (
        not getattr(net, "initialized_", False) and net.callbacks is None
    )  # untouched
    # the reference: the same net fitted by hand with the checkpoint callback
    ref = (
        clone(make_net()).set_params(callbacks=[("ck", TracInCheckpoints())]).fit(X, y)
    )
    model = as_torch_model(ref)
    assert len(model.checkpoints) == 4
    for name, want in brute(model, X, y, Xv, yv).items():
        assert rel_err(df[name].to_numpy().copy(), want) <= 1e-9, name


def test_a_fitted_net_is_used_as_it_is():
    X, y, Xv, yv = data(1)
    net = make_net(callbacks=[("ck", TracInCheckpoints())]).fit(X, y)
    before = {k: v.clone() for k, v in net.module_.state_dict().items()}
    df = compute_signals(
        net, X, y, Xv, yv, signals=["self_influence", "aai", "mi", "instability"]
    )
    for k, v in net.module_.state_dict().items():
        assert torch.equal(v, before[k])
    for name, want in brute(as_torch_model(net), X, y, Xv, yv).items():
        assert rel_err(df[name].to_numpy().copy(), want) <= 1e-9, name


def test_a_fitted_net_without_checkpoints_uses_its_final_parameters():
    X, y, Xv, yv = data(2)
    net = make_net().fit(X, y)
    df = compute_signals(net, X, y, Xv, yv, signals=["self_influence", "aai"])
    for name, want in brute(as_torch_model(net), X, y, Xv, yv).items():
        if name in df:
            assert rel_err(df[name].to_numpy().copy(), want) <= 1e-9, name
    with pytest.raises(ValueError, match="at least 2"):
        compute_signals(net, X, y, signals=["instability"])


@pytest.mark.parametrize("pipeline", [False, True], ids=["net", "pipeline"])
def test_a_net_with_callbacks_disabled_records_checkpoints(pipeline):
    """callbacks="disable", alone or ending a Pipeline: fitted with checkpoints."""
    X, y, Xv, yv = data(6)
    net = make_net(callbacks="disable")  # seeds torch: the same fit as by hand
    est = make_pipeline(StandardScaler(), net) if pipeline else net
    names = ["self_influence", "aai", "instability"]
    df = compute_signals(est, X, y, Xv, yv, signals=names)
    assert net.callbacks == "disable" and not getattr(net, "initialized_", False)
    want = by_hand(fit_by_hand(X, y, pipeline), X, y, Xv, yv)
    for name in names:
        assert rel_err(df[name].to_numpy().copy(), want[name]) <= 1e-9, name


def test_a_pipeline_is_fitted_with_checkpoints_and_keeps_the_index():
    X, y, Xv, yv = data(3)
    pipe = make_pipeline(StandardScaler(), make_net())
    Xdf = pd.DataFrame(X, index=np.arange(1000, 1070))
    names = ["aai", "instability", "aum"]
    df = compute_signals(pipe, Xdf, y, Xv, yv, signals=names)
    assert (df.index == Xdf.index).all() and list(df.columns) == names
    assert pipe[-1].callbacks is None  # the user's Pipeline is untouched
    want = by_hand(fit_by_hand(X, y, pipeline=True), X, y, Xv, yv)
    for name in names:
        assert rel_err(df[name].to_numpy().copy(), want[name]) <= 1e-9, name


def test_a_fitted_logistic_regression():
    X, y, Xv, yv = data(4)
    clf = LogisticRegression().fit(X, y)
    df = compute_signals(clf, X, y, Xv, yv, signals=["self_influence", "aai", "mi"])
    for name, want in brute(as_torch_model(clf), X, y, Xv, yv).items():
        assert rel_err(df[name].to_numpy().copy(), want) <= 1e-9, name
    # an unfitted one is fitted on a clone (no checkpoints: the final model)
    df2 = compute_signals(LogisticRegression(), X, y, Xv, yv, signals=["aai"])
    np.testing.assert_allclose(df2["aai"], df["aai"], rtol=1e-10)


def test_errors():
    X, y, Xv, yv = data()
    with pytest.raises(ValueError, match="X_val"):
        compute_signals(make_net(), X, y, signals=["aai"])
    with pytest.raises(ValueError, match="Unknown"):
        compute_signals(make_net(), X, y, signals=["nope"])
    with pytest.raises(ValueError, match="duplicates"):
        compute_signals(make_net(), X, y, signals=["loss", "loss"])
    clf = LogisticRegression().fit(X, y)
    for bad in (0, 2.5, "8"):  # checked before any work
        with pytest.raises(ValueError, match="projection_dim"):
            compute_influence(clf, X, y, Xv, yv, method=SignalAAI(projection_dim=bad))


def test_signal_methods_prune_through_influence_filter():
    """The filter drops the top-k instability of its first fit, by brute force."""
    X, y, _, _ = data(5)
    # no shuffling: the first fit is the same whatever the filter's seeds
    flt = InfluenceFilter(
        make_net(iterator_train__shuffle=False),
        method="signal_instability",
        prune_ratio=0.1,
        random_state=0,
    ).fit(X, y)
    train = np.setdiff1d(np.arange(len(X)), flt.validation_indices_)
    first = fit_by_hand(X[train], y[train], iterator_train__shuffle=False)
    instability = by_hand(first, X[train], y[train], X[:1], y[:1])["instability"]
    assert rel_err(flt.influence_[train], -instability) <= 1e-9
    assert np.isnan(flt.influence_[flt.validation_indices_]).all()
    k = math.floor(0.1 * len(train))
    top = train[np.argsort(-instability.numpy())[:k]]
    np.testing.assert_array_equal(flt.removed_indices_, np.sort(top))


@pytest.mark.parametrize("signal", ["aai", "mai", "mi", "gd_class"])
def test_signal_methods_use_the_clean_validation_rows_under_every_objective(signal):
    """Not the objective's rows: robustness perturbs them, fairness needs groups."""
    X, y, Xv, yv = data(7)
    clf = LogisticRegression().fit(X, y)
    model = as_torch_model(clf)
    G = per_row_grads(model, model.params, model.prepare_X(X), model.prepare_y(y))
    Gv = per_row_grads(model, model.params, model.prepare_X(Xv), model.prepare_y(yv))
    infl = G @ Gv.T  # no checkpoints: the fitted model, weight 1
    per_class = torch.stack([infl[:, yv == c].sum(1) for c in np.unique(yv)])
    want = {
        "aai": infl.abs().mean(1),
        "mai": infl.abs().sum(1),
        "mi": -infl.sum(1),
        "gd_class": -per_class.min(0).values,
    }[signal]
    df = compute_signals(clf, X, y, Xv, yv, signals=[signal])
    assert rel_err(df[signal].to_numpy().copy(), want) <= 1e-9
    for objective in ("utility", "robustness", "fairness"):  # no sensitive_features
        scores = compute_influence(
            clf, X, y, Xv, yv, objective=objective, method=f"signal_{signal}"
        )
        assert rel_err(scores, -want) <= 1e-9, objective
