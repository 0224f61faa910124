"""``memory=``: joblib caching keyed by the values of the arguments.

joblib keys a cached call by pickling its arguments, and torch pickles a
tensor's storage under its memory address: an argument that holds a tensor
(a skorch net given a module instance, a class-weight tensor) gets a new key
in every call and every process, and the cache never hits. Here tensors are
keyed by their type, dtype, shape, device and bytes instead; everything else
is keyed as joblib keys it.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from joblib.hashing import NumpyHasher
from sklearn.utils.validation import check_memory
from skorch import NeuralNet


def _tensor(
    kind: str, dtype: str, shape: tuple, device: str, requires_grad: bool, data
):
    """The tensor :meth:`_ValueHasher.reducer_override` describes (its inverse)."""
    dt = getattr(torch, dtype.removeprefix("torch."))
    t = torch.from_numpy(np.array(data, dtype=np.uint8)).view(dt).reshape(shape)
    t = t.to(device)
    if kind == "Parameter":
        return torch.nn.Parameter(t, requires_grad=requires_grad)
    return t.requires_grad_(requires_grad)


def _net(cls: type, state: dict):
    """The skorch net :meth:`_ValueHasher.reducer_override` describes."""
    net = cls.__new__(cls)
    net.__dict__.update(state)
    return net


class _ValueHasher(NumpyHasher):
    """joblib's hasher, with tensors hashed by value.

    A skorch net is hashed through its ``__dict__``: its own ``__getstate__``
    pickles part of its state (parameters prefixed ``module__``,
    ``criterion__``, ``optimizer__``) with plain pickle, out of this hasher's
    reach.
    """

    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            if obj.layout != torch.strided or obj.is_quantized or obj.is_meta:
                return NotImplemented
            t = obj.detach().cpu().contiguous().reshape(-1)
            data = t.view(torch.uint8).numpy() if t.numel() else np.empty(0, np.uint8)
            kind = "Parameter" if isinstance(obj, torch.nn.Parameter) else "Tensor"
            shape = tuple(obj.shape)
            return _tensor, (
                kind,
                str(obj.dtype),
                shape,
                str(obj.device),
                obj.requires_grad,
                data,
            )
        if isinstance(obj, NeuralNet):
            return _net, (type(obj), dict(obj.__dict__))
        return NotImplemented


def value_hash(obj) -> str:
    """A hash of ``obj`` that depends on its values only, in any process.

    As :func:`joblib.hash`, except that tensors (and skorch nets holding
    them) are hashed by value.

    Examples
    --------
    >>> import torch
    >>> from skinfluence._memory import value_hash
    >>> value_hash(torch.zeros(3)) == value_hash(torch.zeros(3))
    True
    >>> value_hash(torch.zeros(3)) == value_hash(torch.ones(3))
    False
    """
    return _ValueHasher().hash(obj)


def _call(key, func, args, kwargs):
    """``func(*args, **kwargs)``; joblib caches it under ``key`` alone."""
    return func(*args, **kwargs)


def _code(func) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return repr(getattr(func, "__code__", None) and func.__code__.co_code)


def cache(memory, func):
    """``func`` cached in ``memory``, keyed by the values of its arguments.

    Parameters
    ----------
    memory : None, str or object with the joblib.Memory interface
        As :func:`sklearn.utils.validation.check_memory` accepts.
    func : callable
        A module-level function. Its key also holds its name and source,
        so editing it invalidates its entries, as joblib does.

    Returns
    -------
    callable
        With ``func``'s signature. ``func`` itself when ``memory`` does not
        cache (``None``).
    """
    memory = check_memory(memory)
    if getattr(memory, "location", "") is None:
        return func
    cached = memory.cache(_call, ignore=["func", "args", "kwargs"])
    where = (func.__module__, func.__qualname__, _code(func))

    def call(*args, **kwargs):
        return cached(value_hash((where, args, kwargs)), func, args, kwargs)

    return call
