"""Small float64 models for the kernel tests, kept as a table (curvlinops style)."""

import torch
from torch import nn


class TwiceLinear(nn.Module):
    """Calls the same Linear twice: the closed-form norms must not be used."""

    def __init__(self, d, k):
        super().__init__()
        self.a = nn.Linear(d, d)
        self.out = nn.Linear(d, k)

    def forward(self, x):
        return self.out(torch.tanh(self.a(torch.tanh(self.a(x)))))


def _mlp_tanh(d, k):
    return nn.Sequential(nn.Linear(d, 7), nn.Tanh(), nn.Linear(7, k))


def _mlp_relu_dropout(d, k):
    return nn.Sequential(nn.Linear(d, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, k))


def _mlp_batchnorm(d, k):
    m = nn.Sequential(nn.Linear(d, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, k))
    m[1].running_mean.uniform_(-0.5, 0.5)
    m[1].running_var.uniform_(0.5, 2.0)
    return m


def _mlp_layernorm(d, k):
    return nn.Sequential(nn.Linear(d, 6), nn.LayerNorm(6), nn.Tanh(), nn.Linear(6, k))


def _mlp_softmax(d, k):
    return nn.Sequential(nn.Linear(d, 6), nn.Tanh(), nn.Linear(6, k), nn.Softmax(dim=-1))


def _mlp_logsoftmax(d, k):
    return nn.Sequential(nn.Linear(d, 6), nn.Tanh(), nn.Linear(6, k), nn.LogSoftmax(dim=-1))


def _binary(d, k):
    return nn.Sequential(nn.Linear(d, 5), nn.Tanh(), nn.Linear(5, 1), nn.Flatten(0))


# name -> (module factory, loss, n_classes)
CASES = {
    "mlp_tanh_ce": (_mlp_tanh, nn.CrossEntropyLoss(), 3),
    "mlp_relu_dropout_ce": (_mlp_relu_dropout, nn.CrossEntropyLoss(), 2),
    "mlp_batchnorm_ce": (_mlp_batchnorm, nn.CrossEntropyLoss(), 3),
    "mlp_layernorm_ce": (_mlp_layernorm, nn.CrossEntropyLoss(), 2),
    "twice_linear_ce": (TwiceLinear, nn.CrossEntropyLoss(), 2),
    "mlp_logsoftmax_nll": (_mlp_logsoftmax, nn.NLLLoss(), 3),
    "binary_bce": (_binary, nn.BCEWithLogitsLoss(), 2),
}


def make_case(name, n=40, n_val=15, d=5, seed=0):
    """(module, loss, X, y, X_val, y_val), float64, seeded."""
    factory, loss, k = CASES[name]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    module = factory(d, k).double()
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Xv = torch.randn(n_val, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, k, generator=g, dtype=torch.float64)
    y = (X @ w + 0.5 * torch.randn(n, k, generator=g, dtype=torch.float64)).argmax(1)
    yv = (Xv @ w).argmax(1)
    return module, loss, X, y, Xv, yv
