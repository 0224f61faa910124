"""A skorch net as skinfluence fits it (``SkorchAdapter.prepared``).

- The metadata requests of the user's net (``set_fit_request``, with an alias
  too) and those skinfluence sets survive into the nets the filter fits: each
  refit is checked against a plain torch training loop on the weights the
  requests route (the user's times the filter's).
- Preparing a prepared net changes nothing, so ``verbose`` with
  ``action="reweight"`` (which prepares twice) adds one epoch callback.
- ``verbose=1`` runs with every action and with ``memory=``, counts each
  epoch of each fit once, and leaves the user's net as it was.
"""

import numpy as np
import pytest
import torch
from _tiny_nets import one_torch_thread  # noqa: F401 (autouse fixture)
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from test_routing import EPOCHS, LR, FixedInitMLP, _train_by_hand

from skinfluence import InfluenceFilter
from skinfluence._progress import verbosity
from skinfluence._sklearn_compat import fit_requests
from skinfluence.callbacks import TracInCheckpoints
from skinfluence.models import (
    SkorchAdapter,
    rebuild_final,
    sample_weight_params,
    with_sample_weight,
)
from skinfluence.models._skorch import EpochProgress

ADAPTER = SkorchAdapter()


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=80,
        n_features=5,
        n_informative=3,
        n_redundant=0,
        flip_y=0.1,
        random_state=0,
    )
    sw = np.random.default_rng(1).uniform(0.3, 2.0, size=len(y))
    return X, y, sw


def _net(**kwargs):
    """A full-batch SGD net, initialised independently of torch's global seed."""
    params = dict(
        module=FixedInitMLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=LR,
        max_epochs=EPOCHS,
        batch_size=-1,
        train_split=None,
        verbose=0,
    )
    return NeuralNetClassifier(**{**params, **kwargs})


def _assert_module_equals(net, module):
    ours = net.module_.state_dict()
    for name, p in module.state_dict().items():
        assert_allclose(ours[name].numpy(), p.numpy(), rtol=1e-4, atol=1e-6)


def _filter(estimator, action, **kwargs):
    return InfluenceFilter(
        estimator,
        objective="utility",
        action=action,
        prune_ratio=0.1,
        random_state=0,
        **kwargs,
    )


# ------------------------------------------------------------------ routing
@pytest.mark.parametrize("action", ["remove", "reweight"])
def test_a_users_aliased_request_routes_their_weights_to_the_net(data, action):
    """Pipeline(scaler, net.set_fit_request(sample_weight="net_w")): the user's
    ``net_w`` reaches every fit of the net (times the filter's weights), and
    the scaler, which requested nothing, is fitted unweighted."""
    X, y, sw = data
    with config_context(enable_metadata_routing=True):
        scaler = StandardScaler().set_fit_request(sample_weight=False)
        net = _net().set_fit_request(sample_weight="net_w")
        flt = _filter(make_pipeline(scaler, net), action).fit(X, y, net_w=sw)
        assert fit_requests(net) == {"sample_weight": "net_w"}  # the user's, unchanged
    w = flt.sample_weight_
    m = w > 0
    assert np.sum(w < 1) >= 5  # rows were acted on
    Z = StandardScaler().fit(X[m]).transform(X[m])
    assert_allclose(
        flt.estimator_[0].transform(X), StandardScaler().fit(X[m]).transform(X)
    )
    _assert_module_equals(flt.estimator_[-1], _train_by_hand(Z, y[m], sw[m] * w[m]))
    # the user's weights made a difference: without them the net is another
    other = _train_by_hand(Z, y[m], w[m]).state_dict()["out.weight"].numpy()
    assert not np.allclose(
        flt.estimator_[-1].module_.state_dict()["out.weight"].numpy(), other, atol=1e-4
    )


def test_a_net_that_refuses_the_users_weights_gets_only_the_filters(data):
    """The net's request False survives preparation: the user's sample_weight
    reaches the scaler (times ours), the net only ours (under skinfluence's
    alias); were the request dropped, the net would request True and get both."""
    X, y, sw = data
    with config_context(enable_metadata_routing=True):
        scaler = StandardScaler().set_fit_request(sample_weight=True)
        net = _net().set_fit_request(sample_weight=False)
        flt = _filter(make_pipeline(scaler, net), "reweight").fit(
            X, y, sample_weight=sw
        )
    w = flt.sample_weight_
    m = w > 0
    assert np.sum((w > 0) & (w < 1)) >= 5
    ref = StandardScaler().fit(X[m], sample_weight=sw[m] * w[m])
    assert_allclose(flt.estimator_[0].mean_, ref.mean_, rtol=1e-10)
    _assert_module_equals(
        flt.estimator_[-1], _train_by_hand(ref.transform(X[m]), y[m], w[m])
    )


def test_a_bare_net_takes_the_users_weights_times_the_filters(data):
    X, y, sw = data
    with config_context(enable_metadata_routing=True):
        net = _net().set_fit_request(sample_weight=True)
        flt = _filter(net, "reweight").fit(X, y, sample_weight=sw)
    w = flt.sample_weight_
    m = w > 0
    assert np.sum((w > 0) & (w < 1)) >= 5
    _assert_module_equals(flt.estimator_, _train_by_hand(X[m], y[m], sw[m] * w[m]))


@pytest.mark.parametrize("request_", [True, False, "net_w", None])
def test_preparing_keeps_every_request(request_):
    """The user's request, then skinfluence's (with_sample_weight), survive
    preparation and a second preparation."""
    with config_context(enable_metadata_routing=True):
        net = _net()
        if request_ is not None:
            net.set_fit_request(sample_weight=request_)
        expected = {} if request_ is None else {"sample_weight": request_}
        assert fit_requests(ADAPTER.prepared(clone(net))) == expected
        pipe = with_sample_weight(make_pipeline(StandardScaler(), net))
        # set by skinfluence: True where unset, its alias where the user said False
        ours = {None: True, True: True, False: "skinfluence_sample_weight"}
        ours = {"sample_weight": ours.get(request_, request_)}
        assert fit_requests(pipe[-1]) == ours
        again = rebuild_final(pipe, lambda adapter, model: adapter.prepared(model))
        assert fit_requests(again[-1]) == ours
        # the scaler left its request unset: the weights go to the net only
        key = ours["sample_weight"]
        assert list(sample_weight_params(again, [1.0])) == [
            "sample_weight" if key is True else key
        ]
        assert fit_requests(net) == expected  # the user's net is unchanged


def test_with_checkpoints_keeps_the_request():
    with config_context(enable_metadata_routing=True):
        net = _net().set_fit_request(sample_weight="net_w")
        recording = ADAPTER.with_checkpoints(clone(net))
        assert [n for n, _ in recording.callbacks] == ["tracin_checkpoints"]
        assert fit_requests(recording) == {"sample_weight": "net_w"}


# -------------------------------------------------------------- idempotence
def _described(net) -> dict:
    """get_params(deep=False) with callbacks as (name, class) pairs."""
    params = net.get_params(deep=False)
    cbs = params.pop("callbacks")
    if isinstance(cbs, list):
        cbs = [(n, type(cb)) for n, cb in cbs]
    return {**params, "callbacks": cbs, "class": type(net)}


@pytest.mark.parametrize("verbose", [0, 1])
@pytest.mark.parametrize(
    "callbacks", [None, "disable", [("tracin", TracInCheckpoints())]]
)
def test_preparing_a_prepared_net_changes_nothing(data, verbose, callbacks):
    X, y, _ = data
    with config_context(enable_metadata_routing=True), verbosity(verbose):
        net = _net(callbacks=callbacks, max_epochs=2).set_fit_request(
            sample_weight=True
        )
        once = ADAPTER.prepared(clone(net))
        twice = ADAPTER.prepared(clone(once))
    assert _described(twice) == _described(once)
    assert fit_requests(twice) == fit_requests(once) == {"sample_weight": True}
    listed = once.callbacks if isinstance(once.callbacks, list) else []
    progress = [n for n, cb in listed if isinstance(cb, EpochProgress)]
    assert progress == (["epoch_progress"] if verbose else [])
    # both fit to the same parameters, with the weights, with one progress
    # callback among the callbacks skorch initialises
    w = np.linspace(0.2, 1.0, len(y))
    fits = []
    for prepared in (once, twice):
        torch.manual_seed(0)
        fitted = prepared.fit(X.astype(np.float32), y, sample_weight=w)
        names = [n for n, _ in fitted.callbacks_]
        assert names.count("epoch_progress") == verbose
        assert ("print_log" in names) == (callbacks != "disable")
        fits.append(fitted.module_.state_dict())
    for name, p in fits[0].items():
        assert_array_equal(p.numpy(), fits[1][name].numpy())


# ------------------------------------------------------------------ verbose
def _epoch_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if ", epoch " in line]


@pytest.mark.parametrize("action", ["remove", "reweight", "relabel"])
def test_verbose_runs_with_every_action_and_leaves_the_users_net(
    data, action, capsys, tmp_path
):
    """One fit and one refit of E epochs each: 2 E epoch steps, and the bar
    ends at its total, rounds (E + 1) + E (one round for utility). With
    memory=, a second fit takes the round's fit from the cache: E steps."""
    X, y, _ = data
    epochs = 3
    net = _net(max_epochs=epochs, callbacks=[("tracin", TracInCheckpoints())])
    before = net.get_params(deep=False)
    callbacks_before = [(n, type(cb), cb.get_params()) for n, cb in net.callbacks]
    total = (epochs + 1) + epochs
    for memory, expected_epochs in (
        (None, 2 * epochs),
        (str(tmp_path), 2 * epochs),
        (str(tmp_path), epochs),
    ):
        capsys.readouterr()
        flt = _filter(net, action, verbose=1, memory=memory).fit(X, y)
        err = capsys.readouterr().err
        assert len(_epoch_lines(err)) == expected_epochs, err
        last = [
            line for line in err.splitlines() if line.startswith("InfluenceFilter:")
        ][-1]
        assert f" {total}/{total}," in last, err
        names = [n for n, _ in flt.estimator_.callbacks_]
        assert names.count("epoch_progress") == 1 and names.count("tracin") == 1
    assert not np.all(flt.sample_weight_ == 1) or action == "relabel"
    # the user's net: same parameters, same callback objects, never fitted
    after = net.get_params(deep=False)
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] or after[k] == before[k] for k in before)
    assert [
        (n, type(cb), cb.get_params()) for n, cb in net.callbacks
    ] == callbacks_before
    assert not hasattr(net, "callbacks_") and not getattr(net, "initialized_", False)
    assert not hasattr(net.callbacks[0][1], "checkpoints_")
