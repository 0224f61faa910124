"""Arithmetic on parameter dicts (``dict[str, Tensor]``)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

Tree = Mapping[str, Tensor]


def dot(a: Tree, b: Tree) -> Tensor:
    """Sum of elementwise products over all entries."""
    return sum((a[k] * b[k]).sum() for k in a)


def add(a: Tree, b: Tree, alpha: float | Tensor = 1.0) -> dict[str, Tensor]:
    """``a + alpha * b``."""
    return {k: a[k] + alpha * b[k] for k in a}


def scale(a: Tree, alpha: float | Tensor) -> dict[str, Tensor]:
    """``alpha * a``."""
    return {k: alpha * a[k] for k in a}


def zeros_like(a: Tree) -> dict[str, Tensor]:
    """Zeros shaped like ``a``."""
    return {k: torch.zeros_like(v) for k, v in a.items()}


def flatten(a: Tree) -> Tensor:
    """All entries as one vector, in key order."""
    return torch.cat([v.reshape(-1) for v in a.values()])


def unflatten(vec: Tensor, like: Tree) -> dict[str, Tensor]:
    """Inverse of :func:`flatten`."""
    out, i = {}, 0
    for k, v in like.items():
        out[k] = vec[i : i + v.numel()].reshape(v.shape)
        i += v.numel()
    return out


def n_params(a: Tree) -> int:
    """Number of scalar entries."""
    return sum(v.numel() for v in a.values())
