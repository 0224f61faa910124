"""GPU: the same numbers on CUDA as on the CPU (skipped without a CUDA device)."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import IPEnsemble, InfluenceFunction, compute_influence
from skinfluence.callbacks import TracInCheckpoints


@pytest.mark.cuda
@pytest.mark.parametrize("method", ["ip", "tracin", "self_influence", "loss", "ip_ensemble", "influence_function"])
@pytest.mark.parametrize("objective", ["utility", "fairness", "robustness"])
def test_cuda_scores_equal_cpu_scores(method, objective):
    X, y = make_classification(n_samples=300, n_features=8, random_state=0)
    X = X.astype(np.float32)
    s = np.arange(100) % 2
    nets = {}
    for device in ["cpu", "cuda"]:
        torch.manual_seed(0)
        net = NeuralNetClassifier(
            nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)), criterion=nn.CrossEntropyLoss,
            max_epochs=3, train_split=None, verbose=0, device=device,
            callbacks=[("ck", TracInCheckpoints())],
        ).fit(X[:200], y[:200])
        nets[device] = net
    # identical weights on both devices
    nets["cuda"].module_.load_state_dict(nets["cpu"].module_.state_dict())
    for cb in (nets["cuda"].callbacks_[-1][1], nets["cpu"].callbacks_[-1][1]):
        assert len(cb.checkpoints_) == 3
    nets["cuda"].callbacks_[-1][1].checkpoints_ = nets["cpu"].callbacks_[-1][1].checkpoints_
    m = {"ip_ensemble": IPEnsemble(n_members=3), "influence_function": InfluenceFunction(damping=0.1, max_iter=20)}.get(method, method)
    scores = {
        d: compute_influence(net, X[:200], y[:200], X[200:], y[200:], method=m, objective=objective,
                             sensitive_features_val=s, random_state=0)
        for d, net in nets.items()
    }
    np.testing.assert_allclose(scores["cuda"], scores["cpu"], rtol=2e-3, atol=1e-5 * np.abs(scores["cpu"]).max())
