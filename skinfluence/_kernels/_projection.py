"""Random projections of parameter vectors and of per-row gradients (TRAK).

A seeded Johnson-Lindenstrauss projection (:class:`GaussianProjection`)
and the projected per-row gradients of the rows, a bounded chunk at a time
(:func:`projected_gradients`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ._per_row import per_row_gradients
from ._rows import Params, Rows, row_chunks, to_device

if TYPE_CHECKING:
    from ..models import TorchModel


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
