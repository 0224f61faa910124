"""compute_signals on skorch nets, Pipelines and scikit-learn models, against brute force."""

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

from skinfluence import compute_signals
from skinfluence.callbacks import TracInCheckpoints
from skinfluence.models import as_torch_model
from skinfluence.signals import SIGNALS
from skinfluence.signals._compute import with_checkpoints


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


def test_pipeline_gets_the_callback_on_its_net_and_keeps_the_index():
    X, y, Xv, yv = data(3)
    pipe = make_pipeline(StandardScaler(), make_net())
    prepared = with_checkpoints(pipe)
    assert pipe[-1].callbacks is None
    assert isinstance(prepared[-1].callbacks[0][1], TracInCheckpoints)
    assert with_checkpoints(prepared)[-1].callbacks.__len__() == 1  # not added twice
    Xdf = pd.DataFrame(X, index=np.arange(1000, 1070))
    df = compute_signals(pipe, Xdf, y, Xv, yv, signals=["aai", "instability", "aum"])
    assert (df.index == Xdf.index).all() and np.isfinite(df.to_numpy()).all()


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


def test_signal_methods_prune_through_influence_filter():
    from skinfluence import InfluenceFilter

    X, y, _, _ = data(5)
    flt = InfluenceFilter(
        make_net(double=False),
        method="signal_instability",
        prune_ratio=0.1,
        random_state=0,
    ).fit(X.astype(np.float32), y)
    scored = ~np.isnan(flt.influence_)
    # the filter recorded checkpoints (instability needs them) and dropped the
    # rows of largest instability, i.e. the lowest scores -instability
    dropped = flt.influence_[flt.removed_indices_]
    kept = flt.influence_[scored & flt.sample_mask_]
    assert len(flt.removed_indices_) > 0 and dropped.max() <= kept.min()
