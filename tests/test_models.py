"""Adapters against the estimators they wrap."""

import copy

import numpy as np
import pytest
import torch
from _brute import flat_grad, rel_err
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier
from skorch.callbacks import LRScheduler
from torch import nn

from skinfluence import kernels as K
from skinfluence.callbacks import TracInCheckpoints
from skinfluence.models import as_torch_model


def _data(n=120, classes=2, seed=0):
    X, y = make_classification(
        n_samples=n, n_features=6, n_informative=4, n_classes=classes,
        n_clusters_per_class=1, random_state=seed,
    )
    return X, y


def _proba(model, X):
    Xt = model.prepare_X(X)
    with torch.no_grad():
        return model.log_proba(model.params, Xt.to(model.device)).exp().numpy()


@pytest.mark.parametrize("classes", [2, 3])
def test_logistic_regression_probabilities_and_losses(classes):
    X, y = _data(classes=classes)
    clf = LogisticRegression(C=0.7).fit(X, y)
    model = as_torch_model(clf)
    np.testing.assert_allclose(_proba(model, X), clf.predict_proba(X), rtol=1e-10)
    losses = K.row_losses(model, model.params, model.prepare_X(X), model.prepare_y(y), 50)
    expected = -np.log(clf.predict_proba(X)[np.arange(len(y)), y])
    np.testing.assert_allclose(losses.numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("C", [0.05, 1.0])
def test_logistic_regression_penalty_matches_sklearn_objective(classes, C):
    """At sklearn's solution, the gradient of our training objective vanishes."""
    X, y = _data(classes=classes)
    clf = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    model = as_torch_model(clf)
    Xt, yt = model.prepare_X(X), model.prepare_y(y)
    lam = model.l2(len(X))
    assert lam == {"weight": pytest.approx(1 / (C * len(X)))}

    def objective(p):
        return model.row_loss(p, Xt, yt).mean() + 0.5 * lam["weight"] * p["weight"].pow(2).sum()

    g = flat_grad(objective, model.params)
    assert float(g.abs().max()) < 1e-7
    # and a wrong scaling of the penalty would not vanish
    wrong = flat_grad(
        lambda p: objective(p) + 0.5 * lam["weight"] * p["weight"].pow(2).sum(), model.params
    )
    assert float(wrong.abs().max()) > 1e-4


def test_logistic_regression_hessian_closed_form():
    X, y = _data()
    clf = LogisticRegression(C=0.3).fit(X, y)
    model = as_torch_model(clf)
    H = K.hessian_matrix(model, model.params, model.prepare_X(X), model.prepare_y(y), 64)
    p = clf.predict_proba(X)[:, 1]
    Z = np.hstack([X, np.ones((len(X), 1))])  # weight then bias, as in model.params
    expected = (Z * (p * (1 - p))[:, None]).T @ Z / len(X)
    expected[:-1, :-1] += np.eye(X.shape[1]) / (0.3 * len(X))
    np.testing.assert_allclose(H.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_sgd_classifier():
    X, y = _data()
    clf = SGDClassifier(loss="log_loss", alpha=0.01, random_state=0).fit(X, y)
    model = as_torch_model(clf)
    np.testing.assert_allclose(_proba(model, X), clf.predict_proba(X), rtol=1e-10)
    assert model.l2(len(X)) == {"weight": pytest.approx(0.01)}
    with pytest.raises(TypeError, match="log_loss"):
        as_torch_model(SGDClassifier(loss="hinge").fit(X, y))


def _mlp(d, k, out=None):
    layers = [nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, k)]
    if out is not None:
        layers.append(out)
    return nn.Sequential(*layers)


@pytest.mark.parametrize("criterion", ["ce", "nll"])
def test_skorch_classifier_losses_equal_skorch_get_loss(criterion):
    X, y = _data(classes=3)
    X = X.astype(np.float32)
    torch.manual_seed(0)
    if criterion == "ce":
        net = NeuralNetClassifier(_mlp(6, 3), criterion=nn.CrossEntropyLoss, max_epochs=3,
                                  train_split=None, verbose=0, optimizer__weight_decay=0.01)
    else:
        net = NeuralNetClassifier(_mlp(6, 3, nn.Softmax(dim=-1)), max_epochs=3,
                                  train_split=None, verbose=0)
    net.fit(X, y)
    model = as_torch_model(net)
    np.testing.assert_allclose(_proba(model, X), net.predict_proba(X), rtol=1e-5, atol=1e-6)
    Xt, yt = model.prepare_X(X), model.prepare_y(y)
    ours = K.row_losses(model, model.params, Xt, yt, 32).mean()
    with torch.no_grad():
        net.module_.eval()
        theirs = net.get_loss(net.infer(Xt), yt)
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)
    expected_wd = 0.01 if criterion == "ce" else 0.0
    assert set(model.l2(len(X)).values()) <= {expected_wd}


def test_skorch_binary_classifier():
    X, y = _data()
    X = X.astype(np.float32)
    net = NeuralNetBinaryClassifier(
        nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1), nn.Flatten(0)),
        max_epochs=3, train_split=None, verbose=0,
    ).fit(X, y.astype(np.float32))
    model = as_torch_model(net)
    np.testing.assert_allclose(_proba(model, X), net.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_adamw_weight_decay_is_not_an_objective_term():
    X, y = _data()
    net = NeuralNetClassifier(_mlp(6, 2), criterion=nn.CrossEntropyLoss, optimizer=torch.optim.AdamW,
                              optimizer__weight_decay=0.1, max_epochs=1, train_split=None, verbose=0)
    net.fit(X.astype(np.float32), y)
    assert as_torch_model(net).l2(len(X)) == {}


def test_pipeline_transforms_into_the_models_input_space():
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X * 10 + 3, y)
    model = as_torch_model(pipe)
    np.testing.assert_allclose(_proba(model, X * 10 + 3), pipe.predict_proba(X * 10 + 3), rtol=1e-10)
    np.testing.assert_allclose(
        model.prepare_X(X * 10 + 3).numpy(), pipe[0].transform(X * 10 + 3), rtol=1e-12
    )


def test_tracin_checkpoints_record_params_and_learning_rates():
    X, y = _data()
    X = X.astype(np.float32)
    cb = TracInCheckpoints()
    net = NeuralNetClassifier(
        _mlp(6, 2), criterion=nn.CrossEntropyLoss, max_epochs=4, lr=0.1, batch_size=32,
        train_split=None, verbose=0,
        callbacks=[("tracin", cb), ("sched", LRScheduler(policy="StepLR", step_size=1, gamma=0.5))],
    ).fit(X, y)
    cks = as_torch_model(net).checkpoints
    assert len(cks) == 4
    # StepLR halves the rate after each epoch: epochs ran at 0.1, 0.05, 0.025, 0.0125
    assert [c.learning_rate for c in cks] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    final = dict(net.module_.named_parameters())
    for k, v in cks[-1].params.items():
        assert torch.equal(v, final[k].detach().cpu())
    assert not torch.equal(cks[0].params["0.weight"], cks[-1].params["0.weight"])


def test_unsupported_and_unfitted_estimators():
    X, y = _data()
    for est in [RandomForestClassifier(n_estimators=3).fit(X, y), SVC().fit(X, y)]:
        with pytest.raises(TypeError, match="not supported.*LogisticRegression"):
            as_torch_model(est)
    with pytest.raises(NotFittedError):
        as_torch_model(LogisticRegression())
    with pytest.raises(TypeError, match="loss="):
        as_torch_model(nn.Linear(3, 2))
    with pytest.raises(TypeError, match="plain"):
        as_torch_model(LogisticRegression().fit(X, y), loss=nn.CrossEntropyLoss())


def test_users_module_is_not_modified():
    module = _mlp(6, 2).train()
    before = copy.deepcopy(module.state_dict())
    model = as_torch_model(module, loss=nn.CrossEntropyLoss())
    X, y = _data()
    K.grad_sq_norms(model, model.params, model.prepare_X(X), model.prepare_y(y), 16)
    assert module.training
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert not model.module.training


def test_prepare_y_rejects_unknown_labels():
    X, y = _data()
    model = as_torch_model(LogisticRegression().fit(X, y))
    with pytest.raises(ValueError, match="unknown"):
        model.prepare_y(np.array([0, 1, 5]))
    assert rel_err(model.prepare_y(y), torch.as_tensor(y)) == 0
