"""Rows and seeds: how rows are chunked and moved to the device, how a seed is derived.

Each rule lives here once: the chunks over the rows (fewer rows per chunk
for wide sparse data), a chunk on the model's device, the seed and torch
generator from a scikit-learn ``random_state``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch import Tensor

from .._progress import progress
from .._sparse import SparseRows

if TYPE_CHECKING:
    from ..models import TorchModel


Params = Mapping[str, Tensor]


Rows = Tensor | SparseRows


#: bound on the bytes of one chunk of sparse rows when it is densified
DENSE_CHUNK_BYTES = 2**28



@contextmanager
def seeded(seed: int):
    """Run a block with torch's generators seeded, restoring them afterwards."""
    devices = (
        list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


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
