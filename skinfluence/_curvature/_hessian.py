"""The curvature of the training objective on rows: the base class, and the Hessian.

The training objective is ``mean_i l_i(theta) + sum_p lambda_p / 2
||theta_p||^2`` (the model's L2 penalty, see ``TorchModel.l2``).
:class:`Curvature` is its curvature as an operator on parameter dicts
(the mean over row chunks plus the penalty); :class:`Hessian` takes the
per-row products by forward-over-reverse differentiation. Short forms:
:func:`make_hvp`, :func:`hessian_matrix`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from .. import _tree as tree
from .._kernels import Params, Rows, chunked_gradient, row_chunks, to_device
from ._operator import dense_matrix

if TYPE_CHECKING:
    from ..models import TorchModel


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
