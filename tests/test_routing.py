"""action="reweight" inside Pipelines, with scikit-learn's metadata routing on
and off (issue 16, item 5): the weights the filter makes reach the final
model and the steps that request ``sample_weight``, a user's own
``sample_weight`` multiplies them, and no routing error is raised for weights
the user did not pass. Each refit is checked against the same pipeline fitted
by hand with those weights (scikit-learn's own fit; for the skorch net, a
plain torch training loop)."""

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn import config_context
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skorch import NeuralNetClassifier

from skinfluence import InfluenceFilter


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=150,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        flip_y=0.1,
        random_state=0,
    )
    return X, y


def _reweight(estimator, **kwargs):
    return InfluenceFilter(
        estimator, action="reweight", prune_ratio=0.1, random_state=0, **kwargs
    )


def _scaled_lr(X, y, w_scaler, w_lr):
    """StandardScaler then LogisticRegression, each fitted with its weights."""
    scaler = StandardScaler().fit(X, sample_weight=w_scaler)
    return scaler, LogisticRegression().fit(scaler.transform(X), y, sample_weight=w_lr)


@pytest.mark.parametrize("routing", [False, True])
def test_reweight_in_a_pipeline_equals_sklearns_fit_with_the_weights(data, routing):
    X, y = data
    with config_context(enable_metadata_routing=routing):
        flt = _reweight(make_pipeline(StandardScaler(), LogisticRegression())).fit(X, y)
    w = flt.sample_weight_
    m = w > 0
    assert np.sum((w > 0) & (w < 1)) >= 5  # rows really down-weighted
    # the weights reach the final model only: the scaler requested nothing
    scaler, lr = _scaled_lr(X[m], y[m], None, w[m])
    assert_allclose(flt.estimator_[0].mean_, scaler.mean_, rtol=1e-12)
    assert_allclose(flt.estimator_[-1].coef_, lr.coef_, rtol=1e-8)
    unweighted = LogisticRegression().fit(scaler.transform(X[m]), y[m])
    assert not np.allclose(flt.estimator_[-1].coef_, unweighted.coef_, rtol=1e-4)


def test_with_routing_a_step_that_requests_sample_weight_gets_the_weights(data):
    X, y = data
    with config_context(enable_metadata_routing=True):
        scaler = StandardScaler().set_fit_request(sample_weight=True)
        pipe = make_pipeline(scaler, LogisticRegression())
        flt = _reweight(pipe).fit(X, y)
        # the user's pipeline is not changed: its final step still requests nothing
        assert LogisticRegression().get_metadata_routing().fit.requests == (
            pipe[-1].get_metadata_routing().fit.requests
        )
    w = flt.sample_weight_
    m = w > 0
    ref_scaler, lr = _scaled_lr(X[m], y[m], w[m], w[m])
    assert_allclose(flt.estimator_[0].mean_, ref_scaler.mean_, rtol=1e-10)
    assert not np.allclose(ref_scaler.mean_, X[m].mean(0), rtol=1e-4)
    assert_allclose(flt.estimator_[-1].coef_, lr.coef_, rtol=1e-8)


@pytest.mark.parametrize(
    "routing, scaler_request, lr_request",
    [
        (False, None, None),  # without routing: the step prefix
        (True, False, True),  # routed to the model
        (True, True, False),  # routed to the scaler only: ours still reach the model
        (True, True, "lr_weight"),  # an alias
    ],
)
def test_a_users_sample_weight_multiplies_the_filters(
    data, routing, scaler_request, lr_request
):
    X, y = data
    sw = np.random.default_rng(1).uniform(0.3, 2.0, size=len(y))
    with config_context(enable_metadata_routing=routing):
        scaler, lr = StandardScaler(), LogisticRegression()
        if routing:
            scaler.set_fit_request(sample_weight=scaler_request)
            lr.set_fit_request(sample_weight=lr_request)
            key = lr_request if isinstance(lr_request, str) else "sample_weight"
            params = {key: sw}
            if key != "sample_weight" and scaler_request:
                params["sample_weight"] = sw
        else:
            params = {"logisticregression__sample_weight": sw}
        flt = _reweight(make_pipeline(scaler, lr)).fit(X, y, **params)
    w = flt.sample_weight_
    m = w > 0
    # each step that takes weights: the user's (where they were routed) x ours
    to_scaler = sw[m] * w[m] if scaler_request else None
    to_lr = w[m] * (sw[m] if lr_request is not False else 1.0)
    ref_scaler, ref_lr = _scaled_lr(X[m], y[m], to_scaler, to_lr)
    assert_allclose(flt.estimator_[0].mean_, ref_scaler.mean_, rtol=1e-10)
    assert_allclose(flt.estimator_[-1].coef_, ref_lr.coef_, rtol=1e-8)


# ------------------------------------------------- ColumnTransformer + skorch
class FixedInitMLP(torch.nn.Module):
    """An MLP whose initial weights do not depend on torch's global seed."""

    def __init__(self, n_in=5, hidden=6):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.hidden = torch.nn.Linear(n_in, hidden)
        self.out = torch.nn.Linear(hidden, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X)))


EPOCHS, LR = 15, 0.2


def _frame(X):
    df = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    df["g"] = np.where(X[:, 3] > 0, "u", "v")
    return df


def _column_net():
    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), ["a", "b", "c"]),
            ("cat", OneHotEncoder(sparse_output=False), ["g"]),
        ]
    )
    net = NeuralNetClassifier(
        FixedInitMLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=LR,
        max_epochs=EPOCHS,
        batch_size=-1,
        train_split=None,
        verbose=0,
    )
    return make_pipeline(ct, net)


def _train_by_hand(Z, y, w):
    """Full-batch SGD on mean_i w_i CE_i: the weighted loss, written out."""
    module = FixedInitMLP()
    opt = torch.optim.SGD(module.parameters(), lr=LR)
    Zt, yt = torch.as_tensor(Z, dtype=torch.float32), torch.as_tensor(y)
    wt = torch.as_tensor(w, dtype=torch.float32)
    for _ in range(EPOCHS):
        opt.zero_grad()
        rows = torch.nn.functional.cross_entropy(module(Zt), yt, reduction="none")
        (rows * wt).mean().backward()
        opt.step()
    return module


@pytest.mark.parametrize("routing", [False, True])
def test_reweight_a_column_transformer_and_skorch_net(data, routing):
    X, y = data
    df = _frame(X)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with config_context(enable_metadata_routing=routing):
            flt = _reweight(_column_net()).fit(df, y)
        w = flt.sample_weight_
        m = w > 0
        assert np.sum((w > 0) & (w < 1)) >= 5
        ct = _column_net()[0].fit(df[m])  # unweighted: its scaler requested nothing
        Z = ct.transform(df[m])
        assert_allclose(flt.estimator_[0].transform(df), ct.transform(df), rtol=1e-12)
        module = _train_by_hand(Z, y[m], w[m])
        ours = flt.estimator_[-1].module_.state_dict()
        for name, p in module.state_dict().items():
            assert_allclose(ours[name].numpy(), p.numpy(), rtol=1e-4, atol=1e-6)
        unweighted = _train_by_hand(Z, y[m], np.ones(m.sum()))
        assert not np.allclose(
            ours["out.weight"].numpy(),
            unweighted.state_dict()["out.weight"].numpy(),
            atol=1e-4,
        )
    finally:
        torch.set_num_threads(n)
