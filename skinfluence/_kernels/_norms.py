"""Per-row gradient norms and Gram blocks, from factors or from per-row gradients.

Kernel 3, ``||grad l_i||^2`` (:func:`grad_sq_norms`), and the ``<g_i, g_j>``
blocks of the signals' influence matrix: :func:`row_gradients` decides once
per model whether they come from the closed form of ``nn.Linear`` networks
(:class:`ClosedFormGradients`) or from ``vmap(grad)`` (:class:`VmapGradients`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .._sparse import SparseRows
from ._per_row import linear_factors, linear_layout, per_row_gradients
from ._rows import Params, Rows, row_chunks, to_device

if TYPE_CHECKING:
    from ..models import TorchModel


def _gram(a: Rows, b: Rows) -> Tensor:
    if isinstance(a, SparseRows):
        return a.gram(b)
    if isinstance(b, SparseRows):
        return b.gram(a).T
    return a @ b.T


class ClosedFormGradients:
    """Per-row gradients of ``nn.Linear`` networks as layer factors.

    ``||g_i||^2 = sum_layers (||a_i||^2 + 1) ||d_i||^2`` and
    ``<g_i, g_j> = sum_layers (a_i . a_j + 1) (d_i . d_j)`` (the ``+ 1`` when
    the bias is trainable): one forward and one backward pass per chunk, and
    no per-row gradient is formed. Sparse inputs stay sparse. Built by
    :func:`row_gradients`.

    Parameters
    ----------
    model : TorchModel
    linears : dict of str to nn.Linear
        The model's layers (every trainable parameter is in one).

    Examples
    --------
    The Gram block of two chunks against the per-row gradients:

    >>> from torch import nn, randn, tensor
    >>> from skinfluence.kernels import per_row_gradients, row_gradients
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(3, 2).double(), loss=nn.CrossEntropyLoss())
    >>> X, y = randn(5, 3).double(), tensor([0, 1, 1, 0, 1])
    >>> rg = row_gradients(model, X, y)
    >>> K = rg.gram(rg.features(model.params, X[:2], y[:2]),
    ...             rg.features(model.params, X[2:], y[2:]))
    >>> G = per_row_gradients(model, model.params, X, y)
    >>> bool((K - G[:2] @ G[2:].T).abs().max() < 1e-12)
    True
    """

    name = "closed_form"

    def __init__(self, model: TorchModel, linears: dict) -> None:
        self.model = model
        self.linears = linears

    def features(self, params: Params, Xb: Rows, yb: Tensor):
        """The ``(a, d, bias)`` factors of a chunk (see :func:`linear_factors`)."""
        f = linear_factors(self.model, params, Xb, yb, self.linears)
        if f is None:
            raise RuntimeError(
                "The closed form stopped applying (an nn.Linear called more than "
                "once, or on inputs that are not 2-D); pass method='vmap'."
            )
        return f

    @staticmethod
    def sq_norms(f) -> Tensor:
        """``||g_i||^2`` from the factors of a chunk."""
        total = None
        for a, d, bias in f:
            t = d.pow(2).sum(1)
            if a is not None:
                sq = a.row_sq_norms() if isinstance(a, SparseRows) else a.pow(2).sum(1)
                t = t * (sq + float(bias))
            total = t if total is None else total + t
        return total

    @staticmethod
    def gram(fa, fb) -> Tensor:
        """``<g_i, g_j>`` between the rows of two chunks."""
        out = None
        for (aa, da, bias), (ab, db, _) in zip(fa, fb, strict=True):
            k = da @ db.T
            if aa is not None:
                k = k * (_gram(aa, ab) + float(bias))
            out = k if out is None else out + k
        return out

    @staticmethod
    def nbytes(f) -> int:
        """Memory held by the factors of a chunk."""
        total = 0
        for a, d, _ in f:
            total += d.numel() * d.element_size()
            if isinstance(a, SparseRows):
                total += a.values.numel() * (a.values.element_size() + 8)
            elif a is not None:
                total += a.numel() * a.element_size()
        return total


class VmapGradients:
    """Per-row gradients as a ``(b, P)`` matrix (:func:`per_row_gradients`).

    The general case of :func:`row_gradients`: any module ``vmap`` can
    batch, at ``O(b x P)`` memory per chunk.

    Parameters
    ----------
    model : TorchModel

    Examples
    --------
    >>> from torch import nn, randn, tensor
    >>> from skinfluence.kernels import VmapGradients
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(3, 2).double(), loss=nn.CrossEntropyLoss())
    >>> f = VmapGradients(model).features(model.params, randn(4, 3).double(),
    ...                                   tensor([0, 1, 1, 0]))
    >>> VmapGradients.sq_norms(f).shape
    torch.Size([4])
    """

    name = "vmap"

    def __init__(self, model: TorchModel) -> None:
        self.model = model

    def features(self, params: Params, Xb: Rows, yb: Tensor) -> Tensor:
        """The per-row gradients of a chunk, ``(b, P)``."""
        return per_row_gradients(self.model, params, Xb, yb)

    @staticmethod
    def sq_norms(f: Tensor) -> Tensor:
        """``||g_i||^2``."""
        return f.pow(2).sum(1)

    @staticmethod
    def gram(fa: Tensor, fb: Tensor) -> Tensor:
        """``<g_i, g_j>``."""
        return fa @ fb.T

    @staticmethod
    def nbytes(f: Tensor) -> int:
        """Memory held by the gradients of a chunk."""
        return f.numel() * f.element_size()


ROW_GRADIENT_METHODS = ("auto", "closed_form", "vmap")


def row_gradients(
    model: TorchModel, X: Rows, y: Tensor, method: str = "auto"
) -> ClosedFormGradients | VmapGradients:
    """How per-row gradient quantities are computed for this model: decided once.

    Parameters
    ----------
    model : TorchModel
    X, y : Tensor
        Rows the closed form is tried on (the first two), CPU.
    method : {"auto", "closed_form", "vmap"}, default="auto"
        "auto" takes the closed form when every trainable parameter sits in
        an ``nn.Linear`` called once per forward on 2-D inputs, else
        ``vmap(grad)``; "closed_form" raises when it does not apply.

    Returns
    -------
    ClosedFormGradients or VmapGradients
        With ``features(params, Xb, yb)``, ``sq_norms(f)``, ``gram(fa, fb)``
        (the ``<g_i, g_j>`` block) and ``nbytes(f)``.

    Examples
    --------
    A network of ``nn.Linear`` layers takes the closed form; a LayerNorm does not:

    >>> from torch import nn, randn, tensor
    >>> from skinfluence.kernels import row_gradients
    >>> from skinfluence.models import as_torch_model
    >>> X, y = randn(5, 3).double(), tensor([0, 1, 1, 0, 1])
    >>> mlp = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    >>> row_gradients(as_torch_model(mlp, loss=nn.CrossEntropyLoss()), X, y).name
    'closed_form'
    >>> _ = mlp.insert(1, nn.LayerNorm(4).double())
    >>> row_gradients(as_torch_model(mlp, loss=nn.CrossEntropyLoss()), X, y).name
    'vmap'
    """
    if method not in ROW_GRADIENT_METHODS:
        raise ValueError(
            f"method must be one of {ROW_GRADIENT_METHODS}, got {method!r}."
        )
    linears = linear_layout(model) if method != "vmap" else None
    if linears is not None:
        probe = slice(0, min(len(X), 2))
        Xb, yb = to_device(model, X, y, probe)
        factors = linear_factors(model, model.params, Xb, yb, linears)
        if len(X) == 0 or factors is not None:
            return ClosedFormGradients(model, linears)
    if method == "closed_form":
        raise ValueError(
            "The closed form needs every trainable parameter in an nn.Linear "
            "layer called once per forward on 2-D inputs."
        )
    return VmapGradients(model)


def grad_sq_norms(
    model: TorchModel,
    params: Params,
    X: Rows,
    y: Tensor,
    batch_size: int,
    *,
    method: str = "auto",
) -> Tensor:
    """``||grad l_i(theta)||^2`` for all rows.

    Parameters
    ----------
    model : TorchModel
    params : dict of str to Tensor
    X : Tensor or SparseRows
    y : Tensor
    batch_size : int
    method : {"auto", "closed_form", "vmap"}, default="auto"
        See :func:`row_gradients`.

    Returns
    -------
    Tensor of shape (n,), on the model's device

    Examples
    --------
    The closed form of a logistic model against its per-row gradients:

    >>> from torch import nn, randn, tensor
    >>> from skinfluence.kernels import grad_sq_norms, per_row_gradients
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(3, 2).double(), loss=nn.CrossEntropyLoss())
    >>> X, y = randn(4, 3).double(), tensor([0, 1, 1, 0])
    >>> sq = grad_sq_norms(model, model.params, X, y, batch_size=2)
    >>> G = per_row_gradients(model, model.params, X, y)
    >>> bool((G.pow(2).sum(1) - sq).abs().max() < 1e-12)
    True
    """
    params = {k: p.detach() for k, p in params.items()}
    rg = row_gradients(model, X, y, method)
    out = [
        rg.sq_norms(rg.features(params, *to_device(model, X, y, sl)))
        for sl in row_chunks(X, batch_size, "gradient norms")
    ]
    return torch.cat(out) if out else torch.zeros(0, device=model.device)
