"""The train x validation TracIn matrix, in row blocks of bounded memory.

``I_ij = sum_t eta_t <grad l_i(theta_t), grad l_j(theta_t)>`` between
training row ``i`` and validation row ``j`` over the checkpoints ``t``.
Signals that need ``|I_ij|`` (AAI, MAI) cannot be had from one
forward-mode pass per checkpoint as the signed sums can; they are built here
from *row features* whose pairwise kernel is the gradient inner product
(:func:`skinfluence.kernels.row_gradients` chooses between the first two):

``"closed_form"``
    For networks whose trainable parameters all sit in ``nn.Linear`` layers
    (each called once per forward on 2-D inputs), the gradient of a layer's
    weight for row ``i`` is the outer product ``d_i a_i^T`` of the gradient
    ``d_i`` of ``l_i`` with respect to the layer's output and the layer's
    input ``a_i``. So ``<g_i, g_j> = sum_layers (a_i . a_j + 1) (d_i . d_j)``
    (the ``+ 1`` is the bias): a block of the matrix is
    ``sum_layers (A_i A_j^T + 1) * (D_i D_j^T)``. One forward and one
    backward pass per row block gives ``A`` and ``D``; no per-row gradient is
    formed, and a block costs ``b_i b_j sum_layers (d_in + d_out)``.
``"vmap"``
    Any other network: per-row gradients of a block of rows by
    ``vmap(grad)``, ``b x P``, and ``I`` blocks by matrix products.
projection (``projection_dim=k``)
    A seeded Gaussian sketch ``R`` (``P x k``, entries ``N(0, 1/k)``, the same
    for every checkpoint) with ``E[R R^T] = I``, so ``<g_i R, g_j R>`` is an
    unbiased estimate of ``<g_i, g_j>`` with variance
    ``(<g_i, g_j>^2 + |g_i|^2 |g_j|^2) / k``. Column ``c`` of the sketch
    ``g_i R`` is ``<g_i, r_c>``: one ``jvp`` of the per-row losses along
    ``r_c``. The ``k`` directions are drawn in groups (regenerated from the
    seed where needed, never all held at once), and each group is one
    ``vmap`` of ``jvp``: memory ``O(group x P + batch x group)``, cost about
    ``k`` forward passes per block, and no per-row gradient is formed. Use
    it when ``P`` is large and ``k << P`` (or ``k << sum (d_in + d_out)``).

Memory is bounded whatever ``n`` and ``m``: the features of ``batch_size``
rows at a time, one ``b x m`` block of ``I``, and (when they fit in
``max_cache_bytes``) the validation rows' features at every checkpoint,
which are otherwise recomputed for every block of training rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.func import jvp, vmap

from .._kernels import (
    ROW_GRADIENT_METHODS,
    VmapGradients,
    chunk_rows,
    chunks,
    derive_seed,
    row_chunks,
    row_gradients,
    to_device,
)
from ..models import TorchModel

Params = dict[str, Tensor]

#: bound on the elements of one block of I (b x m)
_BLOCK_ELEMENTS = 2**24
#: bound on the bytes of cached validation features
_MAX_CACHE_BYTES = 2**29


def checkpoints_or_final(model: TorchModel) -> list[tuple[Params, float]]:
    """``(params, learning rate)`` per checkpoint; the fitted model, weight 1, if none."""
    cks = model.checkpoint_params()
    return cks if cks else [(dict(model.params), 1.0)]


# ------------------------------------------------------------------ backends
class _Sketch(VmapGradients):
    """Seeded Gaussian sketch ``g_i R`` of the per-row gradients, by ``jvp``.

    A ``(b, k)`` matrix of row features, like the ``(b, P)`` per-row
    gradients it estimates (same ``gram`` and ``nbytes``).
    """

    name = "projection"

    def __init__(
        self, model: TorchModel, k: int, seed: int, group: int | None = None
    ) -> None:
        self.model = model
        self.k = k
        self.seed = seed
        n_params = sum(p.numel() for p in model.params.values())
        # directions of a group held at once: about 2**22 numbers
        self.group = group or max(1, min(k, 2**22 // max(n_params, 1)))
        self._groups: dict[int, Params] = {}
        # keep R when it is small (<= 2**24 numbers), else regenerate groups
        self._keep = n_params * k <= 2**24

    def directions(self, start: int, size: int) -> Params:
        """Columns ``start .. start + size`` of ``R``, keyed like the params."""
        if start in self._groups:
            return self._groups[start]
        out = self._draw(start, size)
        if self._keep:
            self._groups[start] = out
        return out

    def _draw(self, start: int, size: int) -> Params:
        # a group depends on (seed, parameter name, first column) only, so it
        # is regenerated identically wherever it is needed
        gen = torch.Generator()
        scale = 1.0 / math.sqrt(self.k)
        out = {}
        for name, p in self.model.params.items():
            gen.manual_seed(_mix(self.seed, name, start))
            r = torch.randn((size, *p.shape), generator=gen, dtype=torch.float64)
            out[name] = (r * scale).to(p.device, p.dtype)
        return out

    def features(self, params: Params, Xb: Tensor, yb: Tensor) -> Tensor:
        model = self.model
        params = {k: v.detach() for k, v in params.items()}

        def f(p):
            return model.row_loss(p, Xb, yb)

        def along(t):
            return jvp(f, (params,), (t,))[1]

        cols = []
        for start in range(0, self.k, self.group):
            size = min(self.group, self.k - start)
            dirs = self.directions(start, size)
            cols.append(vmap(along)(dirs).detach().T)  # (b, size)
        return torch.cat(cols, 1)


def _mix(seed: int, name: str, c: int) -> int:
    """A 63-bit seed from (seed, parameter name, column), stable across runs."""
    h = seed & 0xFFFFFFFF
    for ch in f"{name}:{c}".encode():
        h = (h * 1_000_003 + ch) & 0x7FFFFFFFFFFFFFFF
    return h


def _backend(model, X, y, method, projection_dim, random_state):
    if projection_dim is not None:
        if method not in ROW_GRADIENT_METHODS:
            raise ValueError(
                f"method must be one of {ROW_GRADIENT_METHODS}, got {method!r}."
            )
        if not (isinstance(projection_dim, int | np.integer) and projection_dim >= 1):
            raise ValueError(
                f"projection_dim must be an int >= 1 or None, got {projection_dim!r}."
            )
        return _Sketch(model, int(projection_dim), derive_seed(random_state))
    return row_gradients(model, X, y, method)


# -------------------------------------------------------------------- blocks
def iter_influence_blocks(
    model: TorchModel,
    X: Tensor,
    y: Tensor,
    X_val: Tensor,
    y_val: Tensor,
    *,
    checkpoints: Sequence[tuple[Params, float]] | None = None,
    batch_size: int = 512,
    method: str = "auto",
    projection_dim: int | None = None,
    random_state=None,
) -> Iterator[tuple[slice, Tensor]]:
    """Yield ``(rows, I[rows, :])`` for consecutive blocks of training rows.

    Parameters
    ----------
    model : TorchModel
    X, y : Tensor
        Training rows in the model's input space, and class indices (CPU).
    X_val, y_val : Tensor
        Validation rows, likewise.
    checkpoints : list of (params, learning_rate), default=None
        ``None`` means the model's recorded checkpoints, or the fitted
        parameters with weight 1 when it has none.
    batch_size : int, default=512
        Rows per chunk of features; a block of ``I`` has at most
        ``batch_size`` rows (fewer when ``m`` is large: at most 2**24
        entries).
    method : {"auto", "closed_form", "vmap"}, default="auto"
        Exact inner products in closed form (``nn.Linear`` networks; "auto"
        uses it when it applies) or from ``vmap(grad)`` per-row gradients.
    projection_dim : int, default=None
        Estimate the inner products from a Gaussian sketch of this dimension
        instead (``method`` is then ignored).
    random_state : int, RandomState instance or None, default=None
        Seed of the sketch.

    Yields
    ------
    rows : slice
    block : Tensor of shape (rows, m), on the model's device
    """
    cks = checkpoints_or_final(model) if checkpoints is None else list(checkpoints)
    backend = _backend(model, X, y, method, projection_dim, random_state)
    m = len(X_val)
    val_chunks = list(row_chunks(X_val, batch_size))
    cache: list[list] | None = []
    size = 0
    for params, _ in cks:
        row = []
        for sl in val_chunks:
            f = backend.features(params, *to_device(model, X_val, y_val, sl))
            size += backend.nbytes(f)
            if size > _MAX_CACHE_BYTES:
                break
            row.append(f)
        else:
            cache.append(row)
            continue
        cache = None  # too large: recompute for every block of training rows
        break

    rows_per_block = min(chunk_rows(X, batch_size), _BLOCK_ELEMENTS // max(m, 1))
    rows_per_block = max(1, rows_per_block)
    for sl in chunks(len(X), rows_per_block):
        Xb, yb = to_device(model, X, y, sl)
        acc = torch.zeros(len(Xb), m, dtype=model.dtype, device=model.device)
        for t, (params, lr) in enumerate(cks):
            fi = backend.features(params, Xb, yb)
            for v, vsl in enumerate(val_chunks):
                if cache is not None:
                    fj = cache[t][v]
                else:
                    fj = backend.features(params, *to_device(model, X_val, y_val, vsl))
                acc[:, vsl] += lr * backend.gram(fi, fj)
        yield sl, acc


def influence_matrix(
    model: TorchModel,
    X: Tensor,
    y: Tensor,
    X_val: Tensor,
    y_val: Tensor,
    **kwargs,
) -> Tensor:
    """The full ``n x m`` matrix ``I`` (small problems: it is ``O(n m)``).

    Takes the arguments of :func:`iter_influence_blocks`.
    """
    out = torch.empty(len(X), len(X_val), dtype=model.dtype, device=model.device)
    for sl, block in iter_influence_blocks(model, X, y, X_val, y_val, **kwargs):
        out[sl] = block
    return out
