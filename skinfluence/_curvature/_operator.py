"""Symmetric linear operators on parameter dicts, and what can be read off them.

An operator is a callable ``v -> A v`` on parameter dicts with a ``like``
template. :class:`Damped` adds ``damping * I`` to any of them,
:class:`MatrixOperator` wraps a dense matrix (tests, examples);
:func:`dense_matrix` forms the ``P x P`` matrix, :func:`top_eigenvalue`
and :func:`trace_estimate` its largest eigenvalue and its trace.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import vmap

from .. import _tree as tree
from .._kernels import Params

Matvec = Callable[[Params], dict[str, Tensor]]


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
