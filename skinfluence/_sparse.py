"""Sparse rows: a CSR matrix that the kernels slice, move and multiply as is.

:class:`SparseRows` is what :meth:`TorchModel.prepare_X` returns for sparse
input. It is sliced (``X[a:b]``, ``X[index]``) and moved (``X.to(device)``)
like a tensor without ever being densified. Passed to a module, it goes
through ``nn.Linear`` (``F.linear``) as a product over its stored values
only (a gather of the weight's columns and an ``index_add`` over rows: plain
dense operations, so ``torch.func`` differentiates them in both modes and
vectorises over them, on any device); any other operation on it receives
the dense rows of that chunk.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

#: bound on the bytes of the values-times-weights a product gathers at once
_GATHER_BYTES = 2**26


def _dense_args(obj):
    if isinstance(obj, SparseRows):
        return obj.to_dense()
    if isinstance(obj, list | tuple):
        return type(obj)(_dense_args(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _dense_args(v) for k, v in obj.items()}
    return obj


class SparseRows:
    """Rows of a sparse matrix in CSR form, sliced and moved like a tensor.

    What :meth:`skinfluence.models.TorchModel.prepare_X` returns for sparse
    input: the rows stay sparse, and the kernels take one chunk of rows at a
    time to the model's device. A module receiving a chunk computes
    ``nn.Linear`` layers on it from the stored values only (differentiable by
    ``torch.func.grad``, ``jvp`` and ``vmap``); every other operation
    receives the chunk's dense rows.

    Parameters
    ----------
    crow_indices : Tensor of shape (n_rows + 1,)
        Row pointers (int64); ``crow_indices[0]`` may be non-zero.
    col_indices : Tensor of shape (nnz,)
        Column of each stored value (int64).
    values : Tensor of shape (nnz,)
        The stored values.
    n_features : int
        Number of columns.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from skinfluence.kernels import SparseRows
    >>> X = SparseRows.from_scipy(sp.eye(4, format="csr"))
    >>> len(X), X.shape
    (4, (4, 4))
    >>> X[1:3].to_dense()
    tensor([[0., 1., 0., 0.],
            [0., 0., 1., 0.]], dtype=torch.float64)
    >>> W = torch.arange(8.0, dtype=torch.float64).reshape(2, 4)
    >>> torch.nn.functional.linear(X[[3, 0]], W)  # X W^T, from the stored values
    tensor([[3., 7.],
            [0., 4.]], dtype=torch.float64)
    """

    ndim = 2

    def __init__(
        self,
        crow_indices: Tensor,
        col_indices: Tensor,
        values: Tensor,
        n_features: int,
    ) -> None:
        lo, hi = int(crow_indices[0]), int(crow_indices[-1])
        if lo != 0:
            crow_indices = crow_indices - lo
        if lo != 0 or hi != len(values):
            col_indices, values = col_indices[lo:hi], values[lo:hi]
        self.crow_indices = crow_indices
        self.col_indices = col_indices
        self.values = values
        self.n_features = int(n_features)
        self._rows: Tensor | None = None

    @classmethod
    def from_scipy(cls, X, dtype: torch.dtype = torch.float64) -> SparseRows:
        """From any ``scipy.sparse`` matrix or array (converted to CSR).

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> from skinfluence.kernels import SparseRows
        >>> SparseRows.from_scipy(sp.random(3, 5, density=0.4, random_state=0))
        SparseRows(shape=(3, 5), nnz=6, dtype=torch.float64, device='cpu')
        """
        import scipy.sparse as sp

        X = sp.csr_array(X)
        X.sum_duplicates()
        return cls(
            torch.from_numpy(np.asarray(X.indptr, dtype=np.int64)),
            torch.from_numpy(np.asarray(X.indices, dtype=np.int64)),
            torch.from_numpy(np.asarray(X.data)).to(dtype),
            X.shape[1],
        )

    # ------------------------------------------------------------ tensor-like
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_features)``."""
        return (len(self.crow_indices) - 1, self.n_features)

    @property
    def dtype(self) -> torch.dtype:
        """The values' dtype."""
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        """Where the values are."""
        return self.values.device

    def __len__(self) -> int:
        return len(self.crow_indices) - 1

    def __getitem__(self, rows) -> SparseRows:
        """Rows by a slice (step 1) or an integer index array."""
        crow = self.crow_indices
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(len(self))
            stop = max(start, stop)
            return SparseRows(
                crow[start : stop + 1], self.col_indices, self.values, self.n_features
            )
        if isinstance(rows, slice):
            rows = torch.arange(len(self))[rows]
        idx = torch.as_tensor(rows, dtype=torch.int64, device=crow.device).reshape(-1)
        idx = torch.where(idx < 0, idx + len(self), idx)
        starts, lengths = crow[idx], crow[idx + 1] - crow[idx]
        new_crow = torch.zeros(len(idx) + 1, dtype=torch.int64, device=crow.device)
        torch.cumsum(lengths, 0, out=new_crow[1:])
        pos = torch.repeat_interleave(starts - new_crow[:-1], lengths)
        pos = pos + torch.arange(len(pos), device=crow.device)
        return SparseRows(
            new_crow, self.col_indices[pos], self.values[pos], self.n_features
        )

    def to(self, device=None, dtype=None, non_blocking: bool = False) -> SparseRows:
        """On ``device`` and/or with values of ``dtype``, as ``Tensor.to``."""
        if isinstance(device, torch.dtype):
            device, dtype = None, device
        device = self.device if device is None else torch.device(device)
        dtype = self.dtype if dtype is None else dtype
        if device == self.device and dtype == self.dtype:
            return self
        return SparseRows(
            self.crow_indices.to(device, non_blocking=non_blocking),
            self.col_indices.to(device, non_blocking=non_blocking),
            self.values.to(device, dtype, non_blocking=non_blocking),
            self.n_features,
        )

    # --------------------------------------------------------------- algebra
    def row_index(self) -> Tensor:
        """The row of each stored value, shape ``(nnz,)``."""
        if self._rows is None:
            self._rows = torch.repeat_interleave(
                torch.arange(len(self), device=self.device),
                self.crow_indices[1:] - self.crow_indices[:-1],
            )
        return self._rows

    def to_dense(self) -> Tensor:
        """The rows as a dense tensor (for one chunk, never the whole data)."""
        out = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        return out.index_put_(
            (self.row_index(), self.col_indices), self.values, accumulate=True
        )

    def all_finite(self) -> bool:
        """Whether no stored value is NaN or infinite."""
        return bool(torch.isfinite(self.values).all())

    def row_sq_norms(self) -> Tensor:
        """``||x_i||^2`` for every row, shape ``(n_rows,)``."""
        out = torch.zeros(len(self), dtype=self.dtype, device=self.device)
        return out.index_add(0, self.row_index(), self.values.pow(2))

    def linear(self, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """``F.linear`` on these rows, ``X W^T + b``, from the stored values.

        Rows are taken in pieces whose gathered ``nnz x out`` products stay
        under 64 MiB.
        """
        n_out = weight.shape[0]
        size = weight.element_size() * max(n_out, 1)
        crow = self.crow_indices
        pieces, start = [], 0
        while start < len(self):
            # the most rows from ``start`` whose values fit in the bound
            limit = crow[start] + max(1, _GATHER_BYTES // size)
            stop = int(torch.searchsorted(crow, limit, right=True)) - 1
            stop = min(len(self), max(stop, start + 1))
            part = self if (start, stop) == (0, len(self)) else self[start:stop]
            src = part.values[:, None] * weight[:, part.col_indices].T
            out = torch.zeros(len(part), n_out, dtype=src.dtype, device=src.device)
            pieces.append(out.index_add(0, part.row_index(), src))
            start = stop
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        return out if bias is None else out + bias

    def gram(self, other: SparseRows | Tensor) -> Tensor:
        """``X X'^T``: the dense ``(len(self), len(other))`` inner products."""
        other = other.to_dense() if isinstance(other, SparseRows) else other
        return self.linear(other)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear and isinstance(args[0], cls):
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            return args[0].linear(args[1], bias)
        return func(*_dense_args(args), **_dense_args(kwargs))

    def __getattr__(self, name: str):
        # tensor methods a module calls on its input (``x.float()``): they
        # receive the dense rows of this chunk
        if name.startswith("_") or not hasattr(Tensor, name):
            raise AttributeError(name)
        if callable(getattr(Tensor, name)):
            # densified when called, not when looked up (``hasattr``)
            return lambda *args, **kwargs: getattr(self.to_dense(), name)(
                *args, **kwargs
            )
        return getattr(self.to_dense(), name)

    def __repr__(self) -> str:
        return (
            f"SparseRows(shape={self.shape}, nnz={len(self.values)}, "
            f"dtype={self.dtype}, device={str(self.device)!r})"
        )


def as_sparse_rows(X, dtype: torch.dtype) -> SparseRows | None:
    """Sparse input (scipy, torch, SparseRows) as CPU :class:`SparseRows`; else None."""
    import scipy.sparse as sp

    if isinstance(X, SparseRows):
        return X.to("cpu", dtype)
    if sp.issparse(X):
        return SparseRows.from_scipy(X, dtype)
    if isinstance(X, Tensor) and X.layout != torch.strided:
        coo = X.detach().to("cpu").to_sparse().coalesce()
        rows, cols = coo.indices().numpy()
        coo = sp.coo_array((coo.values().numpy(), (rows, cols)), shape=X.shape)
        return SparseRows.from_scipy(coo, dtype)
    return None


def rows_of(X) -> Tensor | SparseRows:
    """Dense rows as they are; :class:`SparseRows` densified (one chunk)."""
    return X.to_dense() if isinstance(X, SparseRows) else X
