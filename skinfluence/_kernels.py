"""The computational core (DESIGN section 4); public as :mod:`skinfluence.kernels`.

Row chunks and seeds, the three kernels over the rows (gradient of a chunked
scalar, forward-mode inner products, per-row gradient norms) and per-row
gradients; Hessian-vector products and their solvers are in ``_curvature``.
Each rule lives here once: how rows are chunked and moved to the device, how
a seed is derived from a ``random_state``, whether per-row gradient
quantities come from the closed form or from ``vmap(grad)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch import Tensor, nn
from torch.func import grad, jvp, vmap

from ._progress import progress
from ._sparse import SparseRows, rows_of

if TYPE_CHECKING:
    from .models import TorchModel

Params = Mapping[str, Tensor]
Rows = Tensor | SparseRows

#: bound on the bytes of one chunk of sparse rows when it is densified
DENSE_CHUNK_BYTES = 2**28


# ------------------------------------------------------------------- seeds
def derive_seed(random_state) -> int:
    """An int seed in ``[0, 2**31 - 1)`` from a scikit-learn ``random_state``.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        As scikit-learn takes it; a RandomState instance is advanced by one
        draw.

    Returns
    -------
    seed : int

    Examples
    --------
    >>> from skinfluence.kernels import derive_seed
    >>> derive_seed(0) == derive_seed(0)
    True
    """
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def torch_generator(random_state) -> torch.Generator:
    """A CPU torch generator seeded with :func:`derive_seed`.

    Parameters
    ----------
    random_state : int, RandomState instance or None

    Returns
    -------
    generator : torch.Generator

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import torch_generator
    >>> a = torch.rand(2, generator=torch_generator(0))
    >>> bool((a == torch.rand(2, generator=torch_generator(0))).all())
    True
    """
    return torch.Generator().manual_seed(derive_seed(random_state))


def in_functorch_transform() -> bool:
    """Whether the call runs under a ``torch.func`` transform (``vmap``...).

    Autograd graphs (``requires_grad_``) cannot be made there.
    """
    return torch._C._functorch.peek_interpreter_stack() is not None


# ------------------------------------------------------------------ chunks
def chunks(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of ``range(n)`` of length ``batch_size``.

    Examples
    --------
    >>> from skinfluence.kernels import chunks
    >>> list(chunks(5, 2))
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def chunk_rows(X: Rows, batch_size: int) -> int:
    """Rows per chunk of ``X``: ``batch_size``, fewer for wide sparse rows.

    A chunk of :class:`SparseRows` may be densified (by a module that is not
    an ``nn.Linear`` on its input, or by ``vmap``), so it holds at most
    ``DENSE_CHUNK_BYTES`` (256 MiB) once dense.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from skinfluence.kernels import SparseRows, chunk_rows
    >>> chunk_rows(SparseRows.from_scipy(sp.csr_array((10, 50_000))), 2048)
    671
    """
    if isinstance(X, SparseRows):
        row_bytes = max(X.shape[1], 1) * X.values.element_size()
        return max(1, min(batch_size, DENSE_CHUNK_BYTES // row_bytes))
    return batch_size


def row_chunks(X: Rows, batch_size: int, desc: str | None = None) -> Iterator[slice]:
    """Slices over the rows of ``X`` of :func:`chunk_rows` rows each.

    Parameters
    ----------
    X : Tensor or SparseRows
    batch_size : int
    desc : str, default=None
        With a description, a progress bar when verbosity is on.

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import row_chunks
    >>> list(row_chunks(torch.zeros(3, 2), 2))
    [slice(0, 2, None), slice(2, 3, None)]
    """
    size = chunk_rows(X, batch_size)
    out = chunks(len(X), size)
    return out if desc is None else progress(out, desc=desc, total=-(-len(X) // size))


def to_device(model: TorchModel, X: Rows, y: Tensor, rows) -> tuple[Rows, Tensor]:
    """Rows ``rows`` (a slice or indices) of ``X`` and ``y`` on the model's device.

    Sparse rows stay sparse (:class:`SparseRows`): modules take them as they
    are.

    Examples
    --------
    A chunk of rows (a slice, or an index array) and its labels:

    >>> from torch import nn, zeros
    >>> from skinfluence.kernels import to_device
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(2, 2), loss=nn.CrossEntropyLoss())
    >>> Xb, yb = to_device(model, zeros(4, 2), zeros(4), slice(1, 3))
    >>> Xb.shape, yb.shape
    (torch.Size([2, 2]), torch.Size([2]))
    """
    return (
        X[rows].to(model.device, non_blocking=True),
        y[rows].to(model.device, non_blocking=True),
    )


def all_finite(X: Rows, rows: int = 65536) -> bool:
    """Whether ``X`` holds no NaN or infinity (checked in chunks of rows)."""
    if isinstance(X, SparseRows):
        return X.all_finite()
    return all(bool(torch.isfinite(X[sl]).all()) for sl in chunks(len(X), rows))


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


# ----------------------------------------------------------- row kernels
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


# ----------------------------------------- per-row gradients: closed form
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


# ---------------------------------------------------------------- projection
#: columns of a projection drawn from one seed (fixed: R does not depend on memory)
_PROJECTION_BLOCK = 128
#: bound on the per-row gradient entries of one chunk (b x P) when projecting
_PROJECTION_CHUNK_ENTRIES = 2**25


class GaussianProjection:
    """A seeded Johnson-Lindenstrauss projection ``R`` of parameter vectors.

    ``R`` is ``P x k`` with entries ``N(0, 1/k)``, so ``E[R R^T] = I`` and
    ``<R^T a, R^T b>`` estimates ``<a, b>``. It is drawn in blocks of 128
    columns, each from ``(seed, block)`` alone (on the CPU, in float64, then
    cast to the parameters' dtype and device), so ``R`` depends on the seed
    only. It is held whole when ``P x k <= max_entries``, else its blocks
    are drawn again at each use.

    Parameters
    ----------
    like : dict of str to Tensor
        The parameters (shapes, order, dtype, device).
    k : int
        The projected dimension.
    seed : int
    max_entries : int, default=2**26
        The most entries of ``R`` held at once.

    Examples
    --------
    ``project`` and ``lift`` are ``R^T`` and ``R``; the same seed, the same ``R``:

    >>> import torch
    >>> from skinfluence.kernels import GaussianProjection
    >>> like = {"w": torch.zeros(3, 2, dtype=torch.float64)}
    >>> R = GaussianProjection(like, k=4, seed=0)
    >>> v = {"w": torch.arange(6.0, dtype=torch.float64).reshape(3, 2)}
    >>> w = torch.ones(4, dtype=torch.float64)
    >>> lhs = float(R.project(v) @ w)
    >>> rhs = float((v["w"] * R.lift(w)["w"]).sum())
    >>> abs(lhs - rhs) < 1e-12, bool((GaussianProjection(like, 4, 0).project(v) == R.project(v)).all())
    (True, True)
    """

    def __init__(
        self, like: Params, k: int, seed: int, *, max_entries: int = 2**26
    ) -> None:
        self.like = {name: p.detach() for name, p in like.items()}
        self.k = int(k)
        self.seed = int(seed)
        self.n_params = sum(p.numel() for p in self.like.values())
        first = next(iter(self.like.values()))
        self.dtype, self.device = first.dtype, first.device
        per_group = max(1, max_entries // max(self.n_params * _PROJECTION_BLOCK, 1))
        self._group = per_group * _PROJECTION_BLOCK
        self._held = None
        if self.n_params * self.k <= max_entries:
            self._held = self._draw(0, self.k)

    def _draw(self, start: int, stop: int) -> Tensor:
        """Columns ``start:stop`` of ``R`` (``start`` a multiple of the block)."""
        gen = torch.Generator()
        cols = []
        for b in range(start, stop, _PROJECTION_BLOCK):
            gen.manual_seed((self.seed * 1_000_003 + b // _PROJECTION_BLOCK) % 2**63)
            size = min(_PROJECTION_BLOCK, stop - b)
            cols.append(
                torch.randn((self.n_params, size), generator=gen, dtype=self.dtype)
            )
        R = torch.cat(cols, 1).div_(math.sqrt(self.k))
        return R.to(self.device)

    def groups(self) -> Iterator[tuple[slice, Tensor]]:
        """``(columns, R[:, columns])`` over all of ``R``, a bounded group at a time."""
        if self._held is not None:
            yield slice(0, self.k), self._held
            return
        for start in range(0, self.k, self._group):
            stop = min(start + self._group, self.k)
            yield slice(start, stop), self._draw(start, stop)

    def project_rows(self, G: Tensor) -> Tensor:
        """``G R``: rows of ``G`` (``b x P``, flattened like ``like``) projected, ``b x k``."""
        out = torch.empty(len(G), self.k, dtype=G.dtype, device=G.device)
        for cols, R in self.groups():
            out[:, cols] = G @ R
        return out

    def project(self, v: Params) -> Tensor:
        """``R^T v`` for a parameter-shaped ``v``: a vector of length ``k``."""
        flat = torch.cat([v[name].reshape(-1) for name in self.like])
        return self.project_rows(flat.to(self.dtype)[None])[0]

    def lift(self, w: Tensor) -> dict[str, Tensor]:
        """``R w`` for ``w`` of length ``k``, shaped like the parameters."""
        w = w.to(self.device, self.dtype)
        flat = sum(R @ w[cols] for cols, R in self.groups())
        out, i = {}, 0
        for name, p in self.like.items():
            out[name] = flat[i : i + p.numel()].reshape(p.shape)
            i += p.numel()
        return out


def projected_gradients(
    model: TorchModel,
    params: Params,
    X: Rows,
    y: Tensor,
    projection: GaussianProjection,
    batch_size: int,
) -> Iterator[Tensor]:
    """Projected per-row gradients ``R^T grad l_i``, a chunk of rows at a time.

    Each chunk's per-row gradients (:func:`per_row_gradients`, ``vmap``)
    times ``R``: memory of one chunk of at most ``batch_size`` rows and
    ``2**25`` gradient entries, never ``n x P``.

    Parameters
    ----------
    model : TorchModel
    params : dict of str to Tensor
    X : Tensor or SparseRows
        Rows (CPU).
    y : Tensor
    projection : GaussianProjection
    batch_size : int

    Yields
    ------
    Tensor of shape (b, k)
        The chunks in row order, on the model's device.

    Examples
    --------
    A projection wider than the model keeps the gradients' inner products:

    >>> from torch import cat, nn, randn, tensor
    >>> from skinfluence.kernels import (
    ...     GaussianProjection, per_row_gradients, projected_gradients)
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(3, 2).double(), loss=nn.CrossEntropyLoss())
    >>> X, y = randn(5, 3).double(), tensor([0, 1, 1, 0, 1])
    >>> R = GaussianProjection(model.params, k=8, seed=0)
    >>> Phi = cat(list(projected_gradients(model, model.params, X, y, R, 2)))
    >>> Phi.shape
    torch.Size([5, 8])
    """
    n_params = sum(p.numel() for p in params.values())
    rows = max(1, min(batch_size, _PROJECTION_CHUNK_ENTRIES // max(n_params, 1)))
    for sl in row_chunks(X, rows, "projected gradients"):
        G = per_row_gradients(model, params, *to_device(model, X, y, sl))
        yield projection.project_rows(G)
