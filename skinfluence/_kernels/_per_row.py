"""Per-row gradients of a chunk: closed form for ``nn.Linear`` networks, else ``vmap``.

A network whose trainable parameters all sit in ``nn.Linear`` layers has
per-row gradients ``d_i [a_i, 1]^T`` per layer (the layer's input ``a_i``
and the gradient ``d_i`` of the row's loss with respect to its output): one
forward and one backward pass per chunk. Any other module goes through
``vmap(grad)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.func import grad, vmap

from .._sparse import rows_of
from ._rows import Params, Rows, in_functorch_transform

if TYPE_CHECKING:
    from ..models import TorchModel


def per_row_gradients(
    model: TorchModel, params: Params, Xb: Rows, yb: Tensor
) -> Tensor:
    """Per-row gradients of one chunk of rows.

    In closed form for networks of ``nn.Linear`` layers
    (:func:`linear_row_gradients`), else by ``vmap(grad)``.
    ``O(len(Xb) x P)`` memory: call it on chunks (:func:`row_chunks`).
    Sparse rows are densified (one chunk).

    Parameters
    ----------
    model : TorchModel
    params : dict of str to Tensor
    Xb : Tensor or SparseRows
        A chunk of rows, on the model's device.
    yb : Tensor
        Their class indices.

    Returns
    -------
    Tensor of shape (len(Xb), P)
        Row ``i`` is ``grad l_i``, flattened in the order of ``params``
        (as ``tree.flatten``).

    Examples
    --------
    Four rows of a model with 2 x 3 weights and 2 biases:

    >>> from torch import nn, randn, tensor
    >>> from skinfluence.kernels import per_row_gradients
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(3, 2).double(), loss=nn.CrossEntropyLoss())
    >>> X, y = randn(4, 3).double(), tensor([0, 1, 1, 0])
    >>> per_row_gradients(model, model.params, X, y).shape
    torch.Size([4, 8])
    """
    linears = None if in_functorch_transform() else linear_layout(model)
    if linears is not None:
        G = linear_row_gradients(model, params, Xb, yb, linears)
        if G is not None:
            return G
    Xb = rows_of(Xb)

    def one(p, x, t):
        return model.row_loss(p, x.unsqueeze(0), t.unsqueeze(0)).sum()

    params = {k: p.detach() for k, p in params.items()}
    g = vmap(grad(one), in_dims=(None, 0, 0))(params, Xb, yb)
    return torch.cat([g[k].reshape(len(Xb), -1) for k in params], 1).detach()


def linear_layout(model: TorchModel) -> dict[str, nn.Linear] | None:
    """Map module path -> nn.Linear when every trainable parameter is in one."""
    linears = {
        name: m for name, m in model.module.named_modules() if isinstance(m, nn.Linear)
    }
    owned = set()
    for name, m in linears.items():
        prefix = f"{name}." if name else ""
        for pname, p in m.named_parameters(recurse=False):
            if p.requires_grad:
                owned.add(prefix + pname)
    if owned != set(model.params):
        return None
    return linears


def linear_factors(
    model: TorchModel, params: Params, Xb: Rows, yb: Tensor, linears: dict
) -> list[tuple[Rows | None, Tensor, bool]] | None:
    """Per-row gradient factors of a network of ``nn.Linear`` layers.

    For each layer with trainable parameters, the gradient of ``l_i`` with
    respect to ``(W, b)`` is ``d_i [a_i, 1]^T``: ``a_i`` the layer's input
    and ``d_i`` the gradient of ``l_i`` with respect to the layer's output.
    Returns one ``(a, d, bias)`` triple per layer (``a`` is None when only
    the bias is trainable, ``bias`` whether it is), or None when a layer is
    called more than once or on inputs that are not ``(batch, features)``.
    """
    named = _named_linear_factors(model, params, Xb, yb, linears)
    return None if named is None else [f[1:] for f in named]


def _named_linear_factors(model, params, Xb, yb, linears):
    """:func:`linear_factors` with each layer's parameter prefix in front."""
    records: dict[str, list] = {name: [] for name in linears}
    handles = []
    for name, m in linears.items():

        def hook(mod, inputs, output, _name=name):
            records[_name].append((inputs[0], output))

        handles.append(m.register_forward_hook(hook))
    try:
        with torch.enable_grad():
            p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            losses = model.row_loss(p, Xb, yb)
            if any(len(r) != 1 or r[0][0].ndim != 2 for r in records.values()):
                return None
            names = list(records)
            outs = [records[n][0][1] for n in names]
            deltas = torch.autograd.grad(losses.sum(), outs, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    factors = []
    for name, delta in zip(names, deltas, strict=True):
        prefix = f"{name}." if name else ""
        has_w, has_b = prefix + "weight" in params, prefix + "bias" in params
        if delta is None or not (has_w or has_b):
            continue
        a = records[name][0][0] if has_w else None
        if isinstance(a, Tensor):
            a = a.detach()
        factors.append((prefix, a, delta.detach(), has_b))
    return factors


def linear_row_gradients(
    model: TorchModel, params: Params, Xb: Rows, yb: Tensor, linears: dict
) -> Tensor | None:
    """Per-row gradients ``(b, P)`` of a network of ``nn.Linear`` layers.

    ``d_i a_i^T`` and ``d_i`` per layer (:func:`linear_factors`), written in
    the order of ``params``: one forward and one backward pass for the chunk
    instead of a per-row backward (``vmap``). None where the closed form
    does not apply.
    """
    named = _named_linear_factors(model, params, Xb, yb, linears)
    if named is None:
        return None
    grads = {}
    for prefix, a, d, bias in named:
        if a is not None:
            grads[prefix + "weight"] = d[:, :, None] * rows_of(a)[:, None, :]
        if bias:
            grads[prefix + "bias"] = d
    b = len(yb)
    return torch.cat(
        [
            grads[k].reshape(b, -1) if k in grads else p.new_zeros(b, p.numel())
            for k, p in params.items()
        ],
        1,
    )
