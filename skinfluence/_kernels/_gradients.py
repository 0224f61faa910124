"""Gradients summed over rows, and their inner products with each row's gradient.

Kernel 1, ``grad J``: :func:`chunked_gradient` (reverse mode over row
chunks; forward-over-reverse along a direction). Kernel 2,
``<grad l_i, v>``: :func:`grad_dot` (one ``jvp`` of the per-row losses per
chunk, no per-row gradient formed) and :func:`grad_dot_classes` (every row
labelled each class in turn). :func:`row_losses` is the forward pass alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.func import grad, jvp

from ._rows import Params, Rows, row_chunks, to_device

if TYPE_CHECKING:
    from ..models import TorchModel


def chunked_gradient(
    chunk_scalar: Callable[..., Tensor],
    params: Params,
    chunks: Iterable[tuple],
    *,
    along: Params | None = None,
) -> dict[str, Tensor]:
    """Sum over chunks of rows of the gradient of a per-chunk scalar.

    ``sum_c grad_theta f(theta, *c)`` by reverse mode, one chunk at a time:
    memory of one chunk. With ``along``, the directional derivative of that
    gradient along ``along`` instead (forward-over-reverse): for ``f`` a sum
    of losses, a Hessian-vector product.

    Parameters
    ----------
    chunk_scalar : callable
        ``chunk_scalar(params, *chunk) -> Tensor`` of shape ``()``.
    params : dict of str to Tensor
    chunks : iterable of tuple
        The chunks' arguments, e.g. ``(Xb, yb)`` pairs from :func:`to_device`
        over :func:`row_chunks`. A generator is fine: it is advanced outside
        the differentiation, one chunk at a time.
    along : dict of str to Tensor, default=None
        A direction shaped like ``params``.

    Returns
    -------
    dict of str to Tensor, shaped like ``params``

    Examples
    --------
    Gradient of ``sum_i (w . x_i)^2`` over chunks of two rows, and its Hessian
    ``2 X^T X`` times ``w``:

    >>> import torch
    >>> from skinfluence.kernels import chunked_gradient, chunks
    >>> X = torch.arange(6.0).reshape(3, 2)
    >>> def f(p, Xb):
    ...     return (Xb @ p["w"]).pow(2).sum()
    >>> w = {"w": torch.tensor([1.0, -1.0])}
    >>> parts = [(X[sl],) for sl in chunks(3, 2)]
    >>> chunked_gradient(f, w, parts)["w"]
    tensor([-12., -18.])
    >>> chunked_gradient(f, w, parts, along=w)["w"]
    tensor([-12., -18.])
    """
    params = {k: p.detach() for k, p in params.items()}
    out = {k: torch.zeros_like(p) for k, p in params.items()}
    g_of = grad(chunk_scalar)
    for chunk in chunks:
        if along is None:
            g = g_of(params, *chunk)
        else:
            _, g = jvp(lambda p, c=chunk: g_of(p, *c), (params,), (dict(along),))
        # out of place, so that vmap over ``along`` works (hessian_matrix)
        out = {k: out[k] + g[k].detach() for k in out}
    return out


@torch.no_grad()
def row_losses(
    model: TorchModel, params: Params, X: Rows, y: Tensor, batch_size: int
) -> Tensor:
    """Per-row losses ``l_i(theta)``, shape ``(n,)``, on the model's device.

    Examples
    --------
    The losses of a logistic model, one per row, equal cross-entropy:

    >>> from torch import nn, randn, tensor
    >>> from skinfluence.kernels import row_losses
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(3, 2).double(), loss=nn.CrossEntropyLoss())
    >>> X, y = randn(5, 3).double(), tensor([0, 1, 0, 1, 1])
    >>> losses = row_losses(model, model.params, X, y, batch_size=2)
    >>> expected = nn.functional.cross_entropy(model.module(X), y, reduction="none")
    >>> bool((losses - expected).abs().max() < 1e-12)
    True
    """
    out = [
        model.row_loss(params, *to_device(model, X, y, sl))
        for sl in row_chunks(X, batch_size, "losses")
    ]
    return torch.cat(out) if out else torch.zeros(0, device=model.device)


def grad_dot(
    model: TorchModel,
    params: Params,
    v: Params,
    X: Rows,
    y: Tensor,
    batch_size: int,
) -> Tensor:
    """``<grad l_i(theta), v>`` for all rows by forward-mode differentiation.

    One ``jvp`` of the per-row loss vector along ``v`` per chunk: the cost of
    about one forward pass, and no per-row gradient is ever formed.

    Parameters
    ----------
    model : TorchModel
    params : dict of str to Tensor
        Where the gradients are taken.
    v : dict of str to Tensor
        The direction, shaped like ``params`` (e.g. ``grad J``).
    X : Tensor or SparseRows
        Rows in the model's input space (CPU).
    y : Tensor
        Their class indices.
    batch_size : int

    Returns
    -------
    Tensor of shape (n,), on the model's device

    Examples
    --------
    Equal to the per-row gradients times ``v``, without forming them:

    >>> from torch import cat, nn, randn, tensor
    >>> from skinfluence.kernels import grad_dot, per_row_gradients
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(3, 2).double(), loss=nn.CrossEntropyLoss())
    >>> X, y = randn(4, 3).double(), tensor([0, 1, 1, 0])
    >>> v = {k: randn(p.shape).double() for k, p in model.params.items()}
    >>> s = grad_dot(model, model.params, v, X, y, batch_size=2)
    >>> G = per_row_gradients(model, model.params, X, y)
    >>> bool((G @ cat([v["weight"].reshape(-1), v["bias"]]) - s).abs().max() < 1e-12)
    True
    """
    params = {k: p.detach() for k, p in params.items()}
    v = {k: v[k].detach().to(p.device, p.dtype) for k, p in params.items()}
    out = []
    for sl in row_chunks(X, batch_size, "inner products"):
        Xb, yb = to_device(model, X, y, sl)
        _, tangent = jvp(
            lambda p, Xb=Xb, yb=yb: model.row_loss(p, Xb, yb), (params,), (v,)
        )
        out.append(tangent.detach())
    return torch.cat(out) if out else torch.zeros(0, device=model.device)


def grad_dot_classes(
    model: TorchModel,
    params: Params,
    v: Params,
    X: Rows,
    n_classes: int,
    batch_size: int,
) -> Tensor:
    """``<grad l(x_i, c; theta), v>`` for every row ``i`` and class ``c``.

    :func:`grad_dot` with every row labelled ``c``, for each class: one
    forward-mode pass per class. The relabel scores of a method whose
    direction ``v`` is fixed.

    Parameters
    ----------
    model : TorchModel
    params : dict of str to Tensor
    v : dict of str to Tensor
    X : Tensor or SparseRows
        Rows in the model's input space (CPU).
    n_classes : int
    batch_size : int

    Returns
    -------
    Tensor of shape (n_classes, n), on the model's device

    Examples
    --------
    >>> from torch import full, nn, randn
    >>> from skinfluence.kernels import grad_dot, grad_dot_classes
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(3, 3).double(), loss=nn.CrossEntropyLoss())
    >>> X = randn(5, 3).double()
    >>> v = {k: randn(p.shape).double() for k, p in model.params.items()}
    >>> s = grad_dot_classes(model, model.params, v, X, 3, batch_size=2)
    >>> one = grad_dot(model, model.params, v, X, full((5,), 2), batch_size=2)
    >>> tuple(s.shape), bool((s[2] - one).abs().max() < 1e-12)
    ((3, 5), True)
    """
    return torch.stack(
        [
            grad_dot(model, params, v, X, torch.full((len(X),), c), batch_size)
            for c in range(n_classes)
        ]
    )
