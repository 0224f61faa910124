"""Curvature of the training objective, and the solvers that invert it.

Public through :mod:`skinfluence.kernels`. The training objective is
``mean_i l_i(theta) + sum_p lambda_p / 2 ||theta_p||^2`` (the model's L2
penalty, see ``TorchModel.l2``); its Hessian-vector products are
forward-over-reverse (:func:`~skinfluence.kernels.chunked_gradient` with
``along``), and the Hessian itself is those products on a basis.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.func import vmap

from . import _tree as tree
from ._kernels import Rows, chunked_gradient, row_chunks, to_device

if TYPE_CHECKING:
    from .models import TorchModel

Params = Mapping[str, Tensor]


def make_hvp(
    model: TorchModel,
    params: Params,
    X: Rows,
    y: Tensor,
    batch_size: int,
) -> Callable[[Params], dict[str, Tensor]]:
    """Hessian-vector product of the training objective at ``params``.

    Parameters
    ----------
    model : TorchModel
    params : dict of str to Tensor
    X : Tensor or SparseRows
        The training rows (CPU).
    y : Tensor
    batch_size : int

    Returns
    -------
    hvp : callable
        ``hvp(v) -> H v``, ``v`` and the result shaped like ``params``.

    Examples
    --------
    For a logistic model the Hessian is ``mean_i x_i x_i^T p_i (1 - p_i)``:

    >>> import torch
    >>> from skinfluence.kernels import make_hvp
    >>> from skinfluence.models import as_torch_model
    >>> lin = torch.nn.Linear(3, 1, bias=False).double()
    >>> model = as_torch_model(lin, loss=torch.nn.BCEWithLogitsLoss())
    >>> X, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1] * 3)
    >>> hvp = make_hvp(model, model.params, X, y, batch_size=4)
    >>> p = torch.sigmoid(lin(X)).reshape(-1).detach()
    >>> H = (X.T * p * (1 - p)) @ X / len(X)
    >>> v = torch.randn(1, 3, dtype=torch.float64)
    >>> bool(torch.allclose(hvp({"weight": v})["weight"], v @ H))
    True
    """
    n = len(X)
    l2 = model.l2(n)
    params = {k: p.detach() for k, p in params.items()}

    def total(p, Xb, yb):
        return model.row_loss(p, Xb, yb).sum()

    def hvp(v: Params) -> dict[str, Tensor]:
        parts = (to_device(model, X, y, sl) for sl in row_chunks(X, batch_size))
        hv = chunked_gradient(total, params, parts, along=v)
        return {k: hv[k] / n + l2.get(k, 0.0) * v[k] for k in hv}

    return hvp


def hessian_matrix(
    model: TorchModel, params: Params, X: Rows, y: Tensor, batch_size: int
) -> Tensor:
    """The full ``P x P`` Hessian of the training objective (small models only).

    Its columns are :func:`make_hvp` products on the standard basis,
    vectorised with ``vmap``.

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
    like = {k: p.detach() for k, p in params.items()}
    flat = tree.flatten(like)
    hvp = make_hvp(model, like, X, y, batch_size)
    eye = torch.eye(flat.numel(), dtype=flat.dtype, device=flat.device)
    H = vmap(lambda e: tree.flatten(hvp(tree.unflatten(e, like))))(eye)
    return (H + H.T) / 2


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
    P = tree.n_params(params)
    if P > max_params:
        raise ValueError(
            f"solver='exact' forms the {P} x {P} Hessian; it is limited to "
            f"{max_params} parameters. Use solver='cg' or 'lissa'."
        )
    H = hessian_matrix(model, params, X, y, batch_size)
    A = H + damping * torch.eye(P, dtype=H.dtype, device=H.device)
    x = torch.linalg.solve(A, tree.flatten(b).to(H.dtype))
    return tree.unflatten(x, params)


def cg(
    matvec: Callable[[Params], dict[str, Tensor]],
    b: Params,
    *,
    damping: float = 0.0,
    tol: float = 1e-6,
    max_iter: int = 200,
) -> dict[str, Tensor]:
    """Conjugate gradients for ``(A + damping I) x = b`` (A symmetric).

    Stops when ``||r|| <= tol ||b||``. Warns when the matrix shows a
    non-positive curvature (a non-convex model with too little damping) or
    when it does not converge in ``max_iter`` steps.

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

    x = tree.zeros_like(b)
    r = {k: v.clone() for k, v in b.items()}
    p = {k: v.clone() for k, v in r.items()}
    rs = tree.dot(r, r)
    b_norm = torch.sqrt(rs)
    if b_norm == 0:
        return x
    for _ in range(max_iter):
        Ap = A(p)
        curv = tree.dot(p, Ap)
        if curv <= 0:
            warnings.warn(
                "CG met non-positive curvature: the damped Hessian is not "
                "positive definite. Increase `damping`.",
                RuntimeWarning,
                stacklevel=3,
            )
            break
        alpha = rs / curv
        x = tree.add(x, p, alpha)
        r = tree.add(r, Ap, -alpha)
        rs_new = tree.dot(r, r)
        if torch.sqrt(rs_new) <= tol * b_norm:
            return x
        p = tree.add(r, p, rs_new / rs)
        rs = rs_new
    else:
        warnings.warn(
            f"CG did not reach tol={tol} in {max_iter} iterations "
            f"(relative residual {float(torch.sqrt(rs) / b_norm):.2e}).",
            RuntimeWarning,
            stacklevel=3,
        )
    return x


def top_eigenvalue(
    matvec: Callable[[Params], dict[str, Tensor]],
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
