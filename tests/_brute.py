"""Brute-force references: per-row gradients by an explicit loop of autograd calls."""

import torch


def flat_grad(fn, params):
    """Gradient of the scalar fn(params) as one flat vector (reverse mode)."""
    p = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    g = torch.autograd.grad(fn(p), list(p.values()), allow_unused=True)
    return torch.cat([
        (gi if gi is not None else torch.zeros_like(v)).reshape(-1)
        for gi, v in zip(g, p.values(), strict=True)
    ])


def per_row_grads(model, params, X, y):
    """The n x P matrix of per-row loss gradients, one autograd call per row."""
    return torch.stack([
        flat_grad(lambda p, i=i: model.row_loss(p, X[i : i + 1], y[i : i + 1]).sum(), params)
        for i in range(len(X))
    ])


def mean_loss_grad(model, params, X, y):
    return flat_grad(lambda p: model.row_loss(p, X, y).mean(), params)


def rel_err(a, b):
    a = torch.as_tensor(a).detach().to(torch.float64)
    b = torch.as_tensor(b).detach().to(torch.float64)
    return float((a - b).abs().max() / b.abs().max())
