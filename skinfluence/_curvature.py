"""Curvature of the training objective, as operators, and their inverses.

Public through :mod:`skinfluence.kernels`. The training objective is
``mean_i l_i(theta) + sum_p lambda_p / 2 ||theta_p||^2`` (the model's L2
penalty, see ``TorchModel.l2``). Its curvature is a symmetric linear
operator on parameter dicts (a callable ``v -> A v`` with a ``like``
template): :class:`Hessian` (forward-over-reverse products) or :class:`GGN`
(the generalized Gauss-Newton ``J^T H_out J``, one JVP and one VJP per
product), and :class:`Damped` adds ``damping * I`` to any of them. The
solvers are objects wrapping any such operator (:class:`ExactInverse`,
:class:`CGInverse`, :class:`LiSSAInverse`), so that every curvature composes
with every solver. The functions :func:`make_hvp`, :func:`hessian_matrix`,
:func:`exact_solve`, :func:`cg` and :func:`lissa` are the short forms;
:func:`trace_estimate` and :func:`curvature_scale` give the curvature's scale
(its trace per parameter).

This module is over 400 lines for a reason: it is one concept, the
curvature and what inverts it, and splitting it would split that pairing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.func import grad, jvp, vjp, vmap
from torch.nn import functional as F

from . import _tree as tree
from ._kernels import (
    Rows,
    chunked_gradient,
    in_functorch_transform,
    row_chunks,
    to_device,
)

if TYPE_CHECKING:
    from .models import TorchModel

Params = Mapping[str, Tensor]
Matvec = Callable[[Params], dict[str, Tensor]]


# --------------------------------------------------------------- operators
class Curvature:
    """Curvature of the training objective on the rows ``(X, y)`` at ``params``.

    A callable ``A(v) -> A v`` on parameter dicts: the mean over the rows of
    the per-row curvature products (chunked by ``batch_size``, memory of one
    chunk) plus the model's L2 penalty times ``v``. Subclasses define
    :meth:`_row_sum`, the sum over one chunk.

    Parameters
    ----------
    model : TorchModel
    params : dict of str to Tensor
        Where the curvature is taken.
    X : Tensor or SparseRows
        The training rows (CPU).
    y : Tensor
        Their class indices.
    batch_size : int
        Rows per chunk.
    n_rows : int, default=None
        The number of training rows the L2 penalty is scaled for
        (scikit-learn's ``C``); ``None`` is ``len(X)``. A subsample
        (:meth:`on_rows`) keeps that of the whole.
    cache_bytes : int, default=2**30
        Bound on the memory an operator keeps between products (the
        :class:`GGN` keeps each chunk's graph; the :class:`Hessian` keeps
        nothing).

    Examples
    --------
    A curvature of the sum of squares ``(w . x_i)^2 / 2``, whose products
    are ``mean_i x_i (x_i . v)``:

    >>> import torch
    >>> from skinfluence.kernels import Curvature
    >>> from skinfluence.models import as_torch_model
    >>> class Gram(Curvature):
    ...     def _row_sum(self, v, rows):
    ...         Xb, _ = self._chunk(rows)
    ...         return {"weight": (Xb @ v["weight"].T).T @ Xb}
    >>> model = as_torch_model(torch.nn.Linear(2, 1, bias=False).double(),
    ...                        loss=torch.nn.BCEWithLogitsLoss())
    >>> X = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> A = Gram(model, model.params, X, torch.tensor([0, 1]), batch_size=1)
    >>> A({"weight": torch.ones(1, 2, dtype=torch.float64)})["weight"]
    tensor([[0.5000, 2.0000]], dtype=torch.float64)
    """

    def __init__(
        self,
        model: TorchModel,
        params: Params,
        X: Rows,
        y: Tensor,
        batch_size: int,
        *,
        n_rows: int | None = None,
        cache_bytes: int = 2**30,
    ) -> None:
        self.model = model
        self.cache_bytes = cache_bytes
        self.like = {k: p.detach() for k, p in params.items()}
        self.X = X
        self.y = y
        self.batch_size = batch_size
        self.n_rows = len(X) if n_rows is None else n_rows
        self.l2 = model.l2(self.n_rows)

    def _row_sum(self, v: Params, rows: slice) -> dict[str, Tensor]:
        """The sum of the per-row curvature products over the chunk ``rows``."""
        raise NotImplementedError

    def _chunk(self, rows: slice) -> tuple[Rows, Tensor]:
        return to_device(self.model, self.X, self.y, rows)

    def __call__(self, v: Params) -> dict[str, Tensor]:
        """``A v``, shaped like ``params``."""
        total = tree.zeros_like(self.like)
        for sl in row_chunks(self.X, self.batch_size):
            total = tree.add(total, self._row_sum(v, sl))  # out of place: vmap works
        n = max(len(self.X), 1)
        return {k: total[k] / n + self.l2.get(k, 0.0) * v[k] for k in total}

    def __len__(self) -> int:
        """The number of rows the curvature averages over."""
        return len(self.X)

    def on_rows(self, rows) -> Curvature:
        """The same curvature on a subset of the rows (indices or a slice).

        Used once (a LiSSA step), so it keeps nothing between products.
        """
        return type(self)(
            self.model,
            self.like,
            self.X[rows],
            self.y[rows],
            self.batch_size,
            n_rows=self.n_rows,
            cache_bytes=0,
        )


class Hessian(Curvature):
    """The Hessian of the training objective, by forward-over-reverse products.

    About ten forward passes per product. Indefinite away from a minimum of
    a non-convex model: CG then meets non-positive curvature unless the
    damping exceeds the most negative eigenvalue.

    Examples
    --------
    For a logistic model the Hessian is ``mean_i x_i x_i^T p_i (1 - p_i)``:

    >>> import torch
    >>> from skinfluence.kernels import Hessian
    >>> from skinfluence.models import as_torch_model
    >>> lin = torch.nn.Linear(3, 1, bias=False).double()
    >>> model = as_torch_model(lin, loss=torch.nn.BCEWithLogitsLoss())
    >>> X, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1] * 3)
    >>> H = Hessian(model, model.params, X, y, batch_size=4)
    >>> p = torch.sigmoid(lin(X)).reshape(-1).detach()
    >>> dense = (X.T * p * (1 - p)) @ X / len(X)
    >>> v = torch.randn(1, 3, dtype=torch.float64)
    >>> bool(torch.allclose(H({"weight": v})["weight"], v @ dense))
    True
    """

    name = "hessian"

    def _row_sum(self, v, rows):
        def total(p, Xb, yb):
            return self.model.row_loss(p, Xb, yb).sum()

        return chunked_gradient(total, self.like, [self._chunk(rows)], along=v)


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


class Damped:
    """``A + damping * I`` for any operator ``A`` with a ``like`` template.

    Parameters
    ----------
    operator : callable
        ``operator(v) -> A v`` on parameter dicts, with attribute ``like``.
    damping : float

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import Damped, MatrixOperator
    >>> A = Damped(MatrixOperator(torch.eye(2, dtype=torch.float64)), 0.5)
    >>> A({"x": torch.ones(2, dtype=torch.float64)})["x"]
    tensor([1.5000, 1.5000], dtype=torch.float64)
    """

    def __init__(self, operator, damping: float) -> None:
        self.operator = operator
        self.damping = float(damping)
        self.like = operator.like

    def __call__(self, v: Params) -> dict[str, Tensor]:
        """``A v + damping v``."""
        return tree.add(self.operator(v), v, self.damping)

    def __len__(self) -> int:
        """The rows of the damped operator (see :meth:`Curvature.on_rows`)."""
        return len(self.operator)

    def on_rows(self, rows) -> Damped:
        """The damped operator on a subset of the rows (see :meth:`Curvature.on_rows`)."""
        return Damped(self.operator.on_rows(rows), self.damping)


class MatrixOperator:
    """A dense symmetric matrix as an operator on ``{"x": vector}`` dicts.

    For tests and examples of the solvers.

    Parameters
    ----------
    matrix : Tensor of shape (P, P)

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import MatrixOperator
    >>> A = MatrixOperator(torch.diag(torch.tensor([1.0, 2.0])))
    >>> A({"x": torch.ones(2)})["x"]
    tensor([1., 2.])
    """

    def __init__(self, matrix: Tensor) -> None:
        self.matrix = matrix
        self.like = {"x": matrix[0]}

    def __call__(self, v: Params) -> dict[str, Tensor]:
        """``matrix @ v["x"]``."""
        return {"x": self.matrix @ v["x"]}


def dense_matrix(operator, like: Params | None = None) -> Tensor:
    """The ``P x P`` matrix of an operator: its products on the standard basis.

    Vectorised with ``vmap``, and symmetrised; for small models only.

    Parameters
    ----------
    operator : callable
        ``operator(v) -> A v`` on parameter dicts.
    like : dict of str to Tensor, default=None
        The parameter template; ``None`` takes ``operator.like``.

    Returns
    -------
    Tensor of shape (P, P)

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import MatrixOperator, dense_matrix
    >>> A = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    >>> bool((dense_matrix(MatrixOperator(A)) == A).all())
    True
    """
    like = operator.like if like is None else like
    operator(tree.zeros_like(like))  # graphs an operator keeps are made here
    flat = tree.flatten(like)
    eye = torch.eye(flat.numel(), dtype=flat.dtype, device=flat.device)
    M = vmap(lambda e: tree.flatten(operator(tree.unflatten(e, like))))(eye)
    return (M + M.T) / 2


# ---------------------------------------------------------------- inverses
@dataclass
class ExactInverse:
    """``A^-1 b`` by forming the matrix of ``A`` and a dense solve (small models).

    Parameters
    ----------
    operator : callable
        A symmetric operator with a ``like`` template (e.g. ``Damped(GGN(...))``).
    max_params : int, default=5000
        Larger models raise ValueError (the matrix is ``P x P``).

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import ExactInverse, MatrixOperator
    >>> A = MatrixOperator(torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64))
    >>> ExactInverse(A)({"x": torch.ones(2, dtype=torch.float64)})["x"]
    tensor([0.4000, 0.2000], dtype=torch.float64)
    """

    operator: Callable
    _: KW_ONLY
    max_params: int = 5000

    def __call__(self, b: Params) -> dict[str, Tensor]:
        """The solution ``x`` of ``A x = b``, shaped like ``b``."""
        P = tree.n_params(self.operator.like)
        if P > self.max_params:
            raise ValueError(
                f"solver='exact' forms the {P} x {P} curvature matrix; it is "
                f"limited to {self.max_params} parameters. Use solver='cg' or "
                "'lissa'."
            )
        M = dense_matrix(self.operator)
        x = torch.linalg.solve(M, tree.flatten(b).to(M.dtype))
        return tree.unflatten(x, self.operator.like)


@dataclass(frozen=True)
class CGInfo:
    """How a conjugate-gradient solve ended.

    Attributes
    ----------
    n_iter : int
        Iterations run, one operator product each.
    residual : float
        Final relative residual ``||b - A x|| / ||b||`` (the recursively
        updated one).
    tol : float
        The tolerance asked for.
    converged : bool
        Whether ``residual <= tol``.
    stop : {"tol", "max_iter", "non_positive_curvature", "zero_rhs"}
        Why it stopped.

    Examples
    --------
    >>> from skinfluence.kernels import CGInfo
    >>> CGInfo(n_iter=3, residual=1e-8, tol=1e-6, converged=True, stop="tol").converged
    True
    """

    n_iter: int
    residual: float
    tol: float
    converged: bool
    stop: str

    def message(self) -> str:
        """A sentence saying how CG ended, and what to change when it fell short."""
        head = (
            f"CG stopped after {self.n_iter} iterations at relative residual "
            f"{self.residual:.2e} (tol={self.tol:g})"
        )
        if self.stop == "non_positive_curvature":
            return (
                f"{head}: it met non-positive curvature, so the damped curvature "
                "is not positive definite. Increase `damping` or use "
                "curvature='ggn'."
            )
        if self.stop == "max_iter":
            return f"{head}: it did not converge. Increase `max_iter` or `damping`."
        return f"{head}."


def conjugate_gradient(
    operator: Matvec, b: Params, *, tol: float = 1e-6, max_iter: int = 200
) -> tuple[dict[str, Tensor], CGInfo]:
    """Conjugate gradients for ``A x = b`` (``A`` symmetric), with how it ended.

    Stops when ``||r|| <= tol ||b||``, after ``max_iter`` iterations, or at
    the first direction of non-positive curvature (returning the iterate
    before it). Never warns: the :class:`CGInfo` says what happened.

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import MatrixOperator, conjugate_gradient
    >>> A = MatrixOperator(torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64))
    >>> x, info = conjugate_gradient(A, {"x": torch.ones(2, dtype=torch.float64)})
    >>> x["x"], info.n_iter, info.converged
    (tensor([0.4000, 0.2000], dtype=torch.float64), 2, True)
    """
    x = tree.zeros_like(b)
    r = {k: v.clone() for k, v in b.items()}
    p = {k: v.clone() for k, v in r.items()}
    rs = tree.dot(r, r)
    b_norm = torch.sqrt(rs)
    if b_norm == 0:
        return x, CGInfo(0, 0.0, tol, True, "zero_rhs")
    stop = "max_iter"
    n_iter = 0
    while n_iter < max_iter:
        Ap = operator(p)
        curv = tree.dot(p, Ap)
        if curv <= 0:
            stop = "non_positive_curvature"
            break
        n_iter += 1
        alpha = rs / curv
        x = tree.add(x, p, alpha)
        r = tree.add(r, Ap, -alpha)
        rs_new = tree.dot(r, r)
        if torch.sqrt(rs_new) <= tol * b_norm:
            rs, stop = rs_new, "tol"
            break
        p = tree.add(r, p, rs_new / rs)
        rs = rs_new
    residual = float(torch.sqrt(rs) / b_norm)
    return x, CGInfo(n_iter, residual, tol, stop == "tol", stop)


@dataclass
class CGInverse:
    """``A^-1 b`` by conjugate gradients on the products of any operator.

    Parameters
    ----------
    operator : callable
        A symmetric operator (e.g. ``Damped(GGN(...), 1e-3)``).
    tol : float, default=1e-6
        Relative residual to reach.
    max_iter : int, default=200

    Attributes
    ----------
    info_ : CGInfo
        How the last solve ended (set by each call).

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import CGInverse, MatrixOperator
    >>> inv = CGInverse(MatrixOperator(torch.diag(torch.tensor([1.0, -1.0]))))
    >>> _ = inv({"x": torch.ones(2)})
    >>> inv.info_.stop, inv.info_.converged
    ('non_positive_curvature', False)
    """

    operator: Callable
    _: KW_ONLY
    tol: float = 1e-6
    max_iter: int = 200

    def __call__(self, b: Params) -> dict[str, Tensor]:
        """The CG iterate for ``A x = b``; see ``info_`` for how close it is."""
        x, self.info_ = conjugate_gradient(
            self.operator, b, tol=self.tol, max_iter=self.max_iter
        )
        return x


@dataclass
class LiSSAInverse:
    """``A^-1 b`` by LiSSA (:func:`lissa`) on any operator's products.

    Parameters
    ----------
    operator : callable
        A symmetric positive definite operator; with ``batch_rows`` it needs
        ``len`` and ``on_rows`` (a :class:`Curvature`, or :class:`Damped` of
        one).
    scale : float, default=None
        Must exceed the largest eigenvalue of ``A``; ``None`` takes 1.2
        times the power-iteration estimate (:func:`top_eigenvalue`).
    depth : int, default=1000
    batch_rows : int, default=None
        Rows per step, drawn at random with ``generator``; ``None`` takes all
        (deterministic).
    generator : torch.Generator, default=None

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import LiSSAInverse, MatrixOperator
    >>> A = MatrixOperator(torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64))
    >>> LiSSAInverse(A, scale=5.0, depth=200)({"x": torch.ones(2, dtype=torch.float64)})["x"]
    tensor([0.4000, 0.2000], dtype=torch.float64)
    """

    operator: Callable
    _: KW_ONLY
    scale: float | None = None
    depth: int = 1000
    batch_rows: int | None = None
    generator: torch.Generator | None = None

    def __call__(self, b: Params) -> dict[str, Tensor]:
        """The LiSSA estimate of ``A^-1 b``."""
        A, gen = self.operator, self.generator
        scale = self.scale
        if scale is None:
            scale = 1.2 * top_eigenvalue(A, A.like, generator=gen)
        if self.batch_rows is None:

            def step(j, h):
                return A(h)

        else:
            n = len(A)
            m = min(int(self.batch_rows), n)

            def step(j, h):
                return A.on_rows(torch.randperm(n, generator=gen)[:m])(h)

        return lissa(step, b, damping=0.0, scale=scale, depth=self.depth)


# ------------------------------------------------------------ short forms
def make_hvp(
    model: TorchModel,
    params: Params,
    X: Rows,
    y: Tensor,
    batch_size: int,
) -> Hessian:
    """Hessian-vector products of the training objective at ``params``.

    Returns
    -------
    hvp : Hessian
        ``hvp(v) -> H v``, ``v`` and the result shaped like ``params``
        (see :class:`Hessian`).

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import make_hvp
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(torch.nn.Linear(3, 2), loss=torch.nn.CrossEntropyLoss())
    >>> X, y = torch.randn(6, 3), torch.tensor([0, 1] * 3)
    >>> hvp = make_hvp(model, model.params, X, y, batch_size=4)
    >>> hvp({k: torch.ones_like(p) for k, p in model.params.items()})["weight"].shape
    torch.Size([2, 3])
    """
    return Hessian(model, params, X, y, batch_size)


def hessian_matrix(
    model: TorchModel, params: Params, X: Rows, y: Tensor, batch_size: int
) -> Tensor:
    """The full ``P x P`` Hessian of the training objective (small models only).

    Examples
    --------
    Eight parameters, so an 8 x 8 matrix; symmetric:

    >>> from torch import nn, randn, tensor
    >>> from skinfluence.kernels import hessian_matrix
    >>> from skinfluence.models import as_torch_model
    >>> model = as_torch_model(nn.Linear(3, 2).double(), loss=nn.CrossEntropyLoss())
    >>> X, y = randn(6, 3).double(), tensor([0, 1] * 3)
    >>> H = hessian_matrix(model, model.params, X, y, batch_size=4)
    >>> H.shape, bool((H == H.T).all())
    (torch.Size([8, 8]), True)
    """
    return dense_matrix(Hessian(model, params, X, y, batch_size))


def exact_solve(
    model: TorchModel,
    params: Params,
    X: Rows,
    y: Tensor,
    b: Params,
    *,
    damping: float,
    batch_size: int,
    max_params: int = 5000,
) -> dict[str, Tensor]:
    """``(H + damping I)^-1 b`` with the Hessian formed explicitly.

    Examples
    --------
    The solution satisfies ``(H + damping I) x = b``:

    >>> import torch
    >>> from skinfluence.kernels import exact_solve, make_hvp
    >>> from skinfluence.models import as_torch_model
    >>> lin = torch.nn.Linear(3, 2).double()
    >>> model = as_torch_model(lin, loss=torch.nn.CrossEntropyLoss())
    >>> X, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1] * 3)
    >>> b = {k: torch.ones_like(p) for k, p in model.params.items()}
    >>> x = exact_solve(model, model.params, X, y, b, damping=0.1, batch_size=4)
    >>> Hx = make_hvp(model, model.params, X, y, 4)(x)
    >>> bool(torch.allclose(Hx["bias"] + 0.1 * x["bias"], b["bias"]))
    True
    """
    A = Damped(Hessian(model, params, X, y, batch_size), damping)
    return ExactInverse(A, max_params=max_params)(b)


def cg(
    matvec: Matvec,
    b: Params,
    *,
    damping: float = 0.0,
    tol: float = 1e-6,
    max_iter: int = 200,
) -> dict[str, Tensor]:
    """Conjugate gradients for ``(A + damping I) x = b`` (A symmetric).

    :func:`conjugate_gradient` that warns (RuntimeWarning) when it stops
    short of ``tol``: at a non-positive curvature (a non-convex model with
    too little damping) or after ``max_iter`` steps. :class:`CGInverse`
    records the outcome instead.

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import cg
    >>> A = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> x = cg(lambda v: {"x": A @ v["x"]}, {"x": torch.ones(2, dtype=torch.float64)})
    >>> x["x"]
    tensor([0.4000, 0.2000], dtype=torch.float64)
    """

    def A(v):
        return tree.add(matvec(v), v, damping)

    x, info = conjugate_gradient(A, b, tol=tol, max_iter=max_iter)
    if not info.converged:
        warnings.warn(info.message(), RuntimeWarning, stacklevel=2)
    return x


def top_eigenvalue(
    matvec: Matvec,
    like: Params,
    *,
    n_iter: int = 30,
    generator: torch.Generator | None = None,
) -> float:
    """Largest-magnitude eigenvalue by power iteration.

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import top_eigenvalue
    >>> A = torch.diag(torch.tensor([1.0, -4.0, 2.0], dtype=torch.float64))
    >>> like = {"x": torch.ones(3, dtype=torch.float64)}
    >>> round(top_eigenvalue(lambda v: {"x": A @ v["x"]}, like, n_iter=100), 6)
    4.0
    """
    v = {
        k: torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        for k, p in like.items()
    }
    v = tree.scale(v, 1.0 / torch.sqrt(tree.dot(v, v)))
    lam = torch.tensor(0.0)
    for _ in range(n_iter):
        w = matvec(v)
        lam = tree.dot(v, w)
        norm = torch.sqrt(tree.dot(w, w))
        if norm == 0:
            return 0.0
        v = tree.scale(w, 1.0 / norm)
    return float(abs(lam))


#: the largest parameter count whose trace :func:`trace_estimate` sums exactly
TRACE_EXACT_MAX_PARAMS = 256


def trace_estimate(
    operator,
    *,
    exact_max_params: int = TRACE_EXACT_MAX_PARAMS,
    n_probes: int = 32,
    seed: int = 0,
) -> float:
    """The trace of a symmetric operator: exact for small models, else Hutchinson's.

    With ``P <= exact_max_params`` parameters, the sum of the exact diagonal
    ``e_j^T A e_j`` (the ``P`` products of :func:`dense_matrix`). Otherwise
    Hutchinson's estimator ``mean_k z_k^T A z_k`` over ``n_probes``
    Rademacher vectors (``n_probes`` products) drawn from a
    ``torch.Generator`` seeded with ``seed``: unbiased, with a relative
    standard deviation of at most ``sqrt(2 / n_probes)`` (0.25 for 32
    probes) for a positive semi-definite ``A``, and deterministic (the same
    operator gives the same number).

    Parameters
    ----------
    operator : callable
        ``operator(v) -> A v`` on parameter dicts, with attribute ``like``.
    exact_max_params : int, default=256
    n_probes : int, default=32
    seed : int, default=0

    Returns
    -------
    float

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import MatrixOperator, trace_estimate
    >>> A = torch.diag(torch.arange(1.0, 301.0, dtype=torch.float64))
    >>> trace_estimate(MatrixOperator(A[:4, :4]))  # exact: 1 + 2 + 3 + 4
    10.0
    >>> est = trace_estimate(MatrixOperator(A))  # Hutchinson, exact for a diagonal
    >>> est == float(A.trace())
    True
    """
    like = operator.like
    P = tree.n_params(like)
    if P <= exact_max_params:
        return float(torch.diagonal(dense_matrix(operator, like)).sum())
    gen = torch.Generator().manual_seed(int(seed))
    total = 0.0
    for _ in range(n_probes):
        z = {
            k: (2 * torch.randint(0, 2, p.shape, generator=gen) - 1).to(p)
            for k, p in like.items()
        }
        total += float(tree.dot(z, operator(z)))
    return total / n_probes


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


def lissa(
    matvec_batches: Callable[[int, Params], dict[str, Tensor]],
    b: Params,
    *,
    damping: float,
    scale: float,
    depth: int,
) -> dict[str, Tensor]:
    """LiSSA (Agarwal et al. 2017) for ``(H + damping I)^-1 b``.

    Iterates ``h_j = b + h_{j-1} - (H_j + damping I) h_{j-1} / scale``, with
    ``H_j`` the Hessian on the j-th mini-batch (``matvec_batches(j, v)``), and
    returns ``h_depth / scale``. Converges when ``scale`` exceeds the largest
    eigenvalue of ``H + damping I`` and that matrix is positive definite.

    Examples
    --------
    >>> import torch
    >>> from skinfluence.kernels import lissa
    >>> A = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> b = {"x": torch.ones(2, dtype=torch.float64)}
    >>> x = lissa(lambda j, v: {"x": A @ v["x"]}, b, damping=0.0, scale=5.0, depth=200)
    >>> x["x"]
    tensor([0.4000, 0.2000], dtype=torch.float64)
    """
    h = {k: v.clone() for k, v in b.items()}
    for j in range(depth):
        Hh = matvec_batches(j, h)
        h = {k: b[k] + h[k] - (Hh[k] + damping * h[k]) / scale for k in h}
        if not all(torch.isfinite(t).all() for t in h.values()):
            raise FloatingPointError("LiSSA diverged; increase `scale` or `damping`.")
    return tree.scale(h, 1.0 / scale)
