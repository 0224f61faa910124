"""Inverses of any symmetric operator: exact, conjugate gradients, LiSSA.

Each solver is an object wrapping an operator (:class:`ExactInverse`,
:class:`CGInverse`, which records a :class:`CGInfo`, :class:`LiSSAInverse`),
so every curvature composes with every solver. Short forms:
:func:`exact_solve`, :func:`conjugate_gradient`, :func:`cg` (warns when it
stops short) and :func:`lissa`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .. import _tree as tree
from .._kernels import Params, Rows
from ._hessian import Hessian
from ._operator import Damped, Matvec, dense_matrix, top_eigenvalue

if TYPE_CHECKING:
    from ..models import TorchModel


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
