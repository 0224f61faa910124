"""The generalized Gauss-Newton ``J^T H_out J`` of the training objective.

Where the model is linearised (:func:`ggn_split`), the operator
(:class:`GGN`, one JVP and one VJP per product on kept graphs), the
curvature's scale ``trace(G) / P`` (:func:`curvature_scale`), and the
curvatures by name (``CURVATURES``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.func import grad, jvp, vjp
from torch.nn import functional as F

from .. import _tree as tree
from .._kernels import Params, Rows, in_functorch_transform
from ._hessian import Curvature, Hessian
from ._operator import trace_estimate

if TYPE_CHECKING:
    from ..models import TorchModel


def ggn_split(model: TorchModel):
    """Where the GGN linearises the model: ``theta -> g(theta, X) -> loss(g, y)``.

    The loss must be convex in ``g`` for the GGN to be positive
    semi-definite. Logits (cross-entropy, BCE-with-logits) and any other
    output are taken as the module returns them, with the model's own
    per-row loss. Log-probabilities (``NLLLoss``) are taken with the loss
    of their log-softmax, which equals the loss at normalised inputs and is
    the cross-entropy (convex), and probabilities are first turned into
    log-probabilities as the loss does: both give the Fisher information of
    the predicted distribution, the logits' GGN when the module ends in a
    (log-)softmax.

    Parameters
    ----------
    model : TorchModel

    Returns
    -------
    outputs : callable
        ``outputs(params, Xb) -> g``, one row of ``g`` per row of ``Xb``.
    loss : callable
        ``loss(g, yb) -> Tensor`` of shape ``(b,)``, each row's loss from
        its own row of ``g``.

    Examples
    --------
    A module ending in ``LogSoftmax`` (``NLLLoss``): the loss of ``g`` is
    the cross-entropy, equal to the model's loss where ``g`` is normalised:

    >>> import torch
    >>> from torch import nn
    >>> from skinfluence.kernels import ggn_split
    >>> from skinfluence.models import as_torch_model
    >>> module = nn.Sequential(nn.Linear(2, 3), nn.LogSoftmax(-1)).double()
    >>> model = as_torch_model(module, loss=nn.NLLLoss())
    >>> outputs, loss = ggn_split(model)
    >>> X, y = torch.randn(4, 2, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    >>> g = outputs(model.params, X)
    >>> bool(torch.allclose(loss(g, y), model.row_loss(model.params, X, y)))
    True
    """
    row_loss = model._row_loss  # the loss of the module's outputs
    if model.output == "log_proba":
        return model.outputs, lambda g, yb: row_loss(F.log_softmax(g, -1), yb)
    if model.output == "proba":
        # the loss takes log(p + eps) (models._base); feeding it
        # softmax(g) - eps gives it log_softmax(g)
        def outputs(p, Xb):
            return model.log_proba_from_outputs(model.outputs(p, Xb))

        def loss(g, yb):
            return row_loss(torch.softmax(g, -1) - torch.finfo(g.dtype).eps, yb)

        return outputs, loss
    return model.outputs, row_loss


class GGN(Curvature):
    """The generalized Gauss-Newton ``J^T H_out J`` of the training objective.

    ``J`` the Jacobian of the model's outputs (see :func:`ggn_split` for
    which outputs) with respect to the parameters and ``H_out`` the Hessian
    of each row's loss with respect to its outputs; plus the L2 penalty.
    Positive semi-definite whenever the loss is convex in the outputs
    (cross-entropy, BCE-with-logits, NLL on log-probabilities), so CG
    converges at any damping > 0. A product is one JVP (``J v``), the
    outputs' Hessian applied row by row (forward-over-reverse in the
    outputs: exact for weighted or smoothed losses too) and one VJP. Each
    chunk's forward graph is built once and kept (within ``cache_bytes``),
    so a product costs about three forward passes (0.13 s against 0.32 s
    for a Hessian-vector product on the 30,000-row Adult MLP of the
    benchmarks, one thread). For a model linear
    in its parameters (logistic regression) it equals the Hessian.

    Parameters
    ----------
    model, params, X, y, batch_size, n_rows, cache_bytes
        As for :class:`Curvature`. The kept graphs' memory is estimated
        from the size of the module's intermediate outputs per row; chunks
        beyond ``cache_bytes`` are linearised again at each product.

    Examples
    --------
    For softmax cross-entropy ``H_out = diag(p) - p p^T``, so a linear
    model's GGN is ``mean_i (H_out,i kron x_i x_i^T)``:

    >>> import torch
    >>> from skinfluence.kernels import GGN
    >>> from skinfluence.models import as_torch_model
    >>> lin = torch.nn.Linear(2, 3, bias=False).double()
    >>> model = as_torch_model(lin, loss=torch.nn.CrossEntropyLoss())
    >>> X, y = torch.randn(5, 2, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])
    >>> G = GGN(model, model.params, X, y, batch_size=2)
    >>> p = torch.softmax(lin(X), -1).detach()
    >>> H_out = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    >>> dense = torch.einsum("iab,ic,id->acbd", H_out, X, X).reshape(6, 6) / 5
    >>> v = torch.randn(3, 2, dtype=torch.float64)
    >>> bool(torch.allclose(G({"weight": v})["weight"].reshape(-1), dense @ v.reshape(-1)))
    True
    """

    name = "ggn"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._outputs, self._loss = ggn_split(self.model)
        self._cache: dict[int, tuple] = {}
        self._row_bytes: int | None = None

    def _linearised(self, rows: slice):
        """A chunk's outputs ``g``, its rows' labels and the graph of ``J^T u``.

        One forward pass and one backward pass with ``create_graph`` for a
        symbolic cotangent ``u``: ``J^T u`` is linear in ``u``, so
        differentiating it once more along ``v`` gives ``J v`` (a double
        backward), and the forward graph gives ``J^T w`` by a backward pass.
        The parameters are fixed, so the graphs of the chunks are kept
        while they fit in ``cache_bytes`` and serve every product.
        """
        if rows.start in self._cache:
            return self._cache[rows.start]
        Xb, yb = self._chunk(rows)
        leaves = [p.detach().requires_grad_(True) for p in self.like.values()]
        with torch.enable_grad():
            out = self._outputs(dict(zip(self.like, leaves, strict=True)), Xb)
            u = torch.zeros_like(out, requires_grad=True)
            pulled = torch.autograd.grad(
                out, leaves, u, create_graph=True, allow_unused=True
            )
        entry = (out, yb, leaves, u, pulled)
        if self._row_bytes is None:
            self._row_bytes = _intermediate_bytes_per_row(self.model, self.like, Xb)
        size = 4 * self._row_bytes * (rows.stop - rows.start)
        if size * (len(self._cache) + 1) <= self.cache_bytes:
            self._cache[rows.start] = entry
        return entry

    def _row_sum(self, v, rows):
        if rows.start not in self._cache and in_functorch_transform():
            return self._row_sum_functional(v, rows)  # no graphs made under vmap
        out, yb, leaves, u, pulled = self._linearised(rows)
        used = [
            (g, v[k]) for k, g in zip(self.like, pulled, strict=True) if g is not None
        ]
        with torch.enable_grad():
            Jv = torch.autograd.grad(
                [g for g, _ in used], u, [t for _, t in used], retain_graph=True
            )[0]
        HJv = self._output_hvp(out.detach(), yb, Jv)
        with torch.enable_grad():
            back = torch.autograd.grad(
                out, leaves, HJv, retain_graph=True, allow_unused=True
            )
        return {
            k: torch.zeros_like(p) if g is None else g
            for (k, p), g in zip(self.like.items(), back, strict=True)
        }

    def _row_sum_functional(self, v, rows):
        """The same product by ``torch.func.jvp`` and ``vjp`` (inside transforms)."""
        Xb, yb = self._chunk(rows)

        def g(p):
            return self._outputs(p, Xb)

        out, Jv = jvp(g, (self.like,), (dict(v),))
        _, pull = vjp(g, self.like)
        return pull(self._output_hvp(out.detach(), yb, Jv))[0]

    def _output_hvp(self, out: Tensor, yb: Tensor, u: Tensor) -> Tensor:
        """``H_out u`` row by row (the loss is a sum of per-row terms)."""
        return jvp(grad(lambda o: self._loss(o, yb).sum()), (out,), (u,))[1]


def _intermediate_bytes_per_row(model: TorchModel, params: Params, Xb: Rows) -> int:
    """Bytes per row of the outputs of the module's leaf modules (a probe)."""
    total = [0]

    def hook(mod, inputs, output):
        if isinstance(output, Tensor):
            total[0] += output.numel() * output.element_size()

    leaves = [m for m in model.module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        probe = Xb[: min(len(Xb), 2)]
        with torch.no_grad():
            model.outputs(params, probe)
    finally:
        for h in handles:
            h.remove()
    return max(1, total[0] // max(len(probe), 1))


#: the curvature operators by name (``InfluenceFunction(curvature=...)``)
CURVATURES: dict[str, type[Curvature]] = {"hessian": Hessian, "ggn": GGN}


def curvature_scale(curvature: Curvature) -> float:
    """The scale of a curvature: ``trace(G) / P``, ``G`` its Gauss-Newton matrix.

    ``G`` is the :class:`GGN` of the same rows and penalty (the curvature
    itself when it is one; for a :class:`Hessian`, its positive
    semi-definite Gauss-Newton part, whose trace cannot be negative, and
    equal to it for models linear in their parameters). The trace comes
    from :func:`trace_estimate`: exact up to 256 parameters, Hutchinson's
    seeded estimate with 32 probes above. ``InfluenceFunction`` damps with
    ``damping * curvature_scale(C)``, so that its ``damping`` is relative
    to the mean eigenvalue of the curvature.

    Parameters
    ----------
    curvature : Curvature

    Returns
    -------
    float

    Examples
    --------
    A logistic model's Hessian is its GGN, ``mean_i p_i (1 - p_i) x_i x_i^T``:

    >>> import torch
    >>> from skinfluence.kernels import Hessian, curvature_scale
    >>> from skinfluence.models import as_torch_model
    >>> lin = torch.nn.Linear(3, 1, bias=False).double()
    >>> model = as_torch_model(lin, loss=torch.nn.BCEWithLogitsLoss())
    >>> X, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1] * 3)
    >>> p = torch.sigmoid(lin(X)).reshape(-1).detach()
    >>> dense = (X.T * p * (1 - p)) @ X / len(X)
    >>> H = Hessian(model, model.params, X, y, batch_size=4)
    >>> bool(abs(curvature_scale(H) - dense.trace() / 3) < 1e-12)
    True
    """
    G = curvature
    if not isinstance(curvature, GGN):
        G = GGN(
            curvature.model,
            curvature.like,
            curvature.X,
            curvature.y,
            curvature.batch_size,
            n_rows=curvature.n_rows,
            cache_bytes=0,
        )
    return max(trace_estimate(G), 0.0) / max(tree.n_params(G.like), 1)
