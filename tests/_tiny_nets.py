"""Tiny skorch nets shared by the InfluenceFilter / InfluenceSampler tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier


class MLP(torch.nn.Module):
    """One hidden layer; ``n_in`` and ``n_out`` are set by :class:`AutoNet`."""

    def __init__(self, n_in=2, n_out=2, hidden=8):
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, hidden)
        self.out = torch.nn.Linear(hidden, n_out)

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X)))


class AutoNet(NeuralNetClassifier):
    """A NeuralNetClassifier that sizes its MLP from the data it is fitted on.

    scikit-learn's estimator checks vary the number of features and classes;
    a skorch module has fixed sizes, so this fixture sets them at fit time
    (on the clone the filter fits, never on the user's net).
    """

    def fit(self, X, y, **fit_params):
        self.set_params(
            module__n_in=np.shape(X)[1], module__n_out=len(np.unique(np.asarray(y)))
        )
        return super().fit(X, y, **fit_params)


def tiny_net(**kwargs):
    """A fast, deterministic-given-the-seed classifier net."""
    params = dict(
        module=MLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.1,
        max_epochs=20,
        batch_size=64,
        train_split=None,
        verbose=0,
    )
    params.update(kwargs)
    return AutoNet(**params)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads; on a busy 2-core machine the
    threads' spin-waits make them 10-100x slower. Restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
