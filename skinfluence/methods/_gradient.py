"""Gradient inner-product methods: ip, ip_ensemble, tracin."""

from __future__ import annotations

from numbers import Integral, Real

import torch

from .._kernels import grad_dot, torch_generator
from .._progress import progress
from .._sklearn_compat import Interval
from ._base import METHODS, Method


def _ip_at(model, objective, params, X, y, batch_size):
    v = objective.gradient(params, batch_size=batch_size)
    return grad_dot(model, params, v, X, y, batch_size)


@METHODS.register
class IP(Method):
    """Inner product of gradients at the fitted parameters.

    ``s_i = <grad J(theta), grad l_i(theta)>``: the first-order change of
    ``-J`` under a gradient step on row ``i``. One backward pass over the
    validation rows, one forward-mode pass over the training rows.

    Examples
    --------
    >>> from skinfluence.methods import IP
    >>> IP().needs_objective, IP().needs_checkpoints
    (True, False)
    """

    _key = "ip"
    row_separable = True

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        return _ip_at(model, objective, model.params, X, y, batch_size)


@METHODS.register
class IPEnsemble(Method):
    """Inner products averaged over dropout-perturbed copies of the model.

    Member 0 is the fitted model; each other member ``k`` zeroes every
    parameter entry with probability ``p_k ~ U(0, max_dropout)`` and rescales
    the rest by ``1 / (1 - p_k)``. The score is the mean of the members' IP
    scores. With ``max_dropout=0`` it equals :class:`IP`.

    Parameters
    ----------
    n_members : int, default=10
        Number of members, the fitted model included.
    max_dropout : float, default=0.01
        Upper bound of the members' dropout rates, in [0, 1).

    Examples
    --------
    Member 0 is the fitted parameters; the others drop entries:

    >>> import torch
    >>> from skinfluence.methods import IPEnsemble
    >>> ens = IPEnsemble(n_members=3, max_dropout=0.5)
    >>> members = list(ens.members({"w": torch.ones(1000)}, random_state=0))
    >>> [int((m["w"] == 0).sum()) for m in members][0], len(members)
    (0, 3)
    """

    _key = "ip_ensemble"
    row_separable = True
    _parameter_constraints: dict = {
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "max_dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(self, n_members: int = 10, max_dropout: float = 0.01) -> None:
        self.n_members = n_members
        self.max_dropout = max_dropout

    def members(self, params, random_state):
        """Yield the members' parameter dicts (member 0 is ``params``)."""
        self.validate()
        gen = torch_generator(random_state)
        yield params
        for _ in range(self.n_members - 1):
            p = (
                float(torch.rand((), generator=gen, dtype=torch.float64))
                * self.max_dropout
            )
            member = {}
            for k, t in params.items():
                keep = torch.rand(t.shape, generator=gen, dtype=torch.float64) >= p
                member[k] = t * keep.to(t.device, t.dtype) / (1.0 - p)
            yield member

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        total = None
        members = self.members(model.params, random_state)
        for member in progress(members, desc="ensemble members", total=self.n_members):
            s = _ip_at(model, objective, member, X, y, batch_size)
            total = s if total is None else total + s
        return total / self.n_members


@METHODS.register
class TracIn(Method):
    """TracIn: learning-rate-weighted inner products over training checkpoints.

    ``s_i = sum_t eta_t <grad J(theta_t), grad l_i(theta_t)>`` over the
    checkpoints recorded while training (for skorch, with
    :class:`skinfluence.callbacks.TracInCheckpoints`).

    References
    ----------
    Pruthi et al., "Estimating Training Data Influence by Tracing Gradient
    Descent", NeurIPS 2020.

    Examples
    --------
    >>> from skinfluence.methods import TracIn
    >>> TracIn.needs_checkpoints
    True
    """

    _key = "tracin"
    row_separable = True
    needs_checkpoints = True
    wants_checkpoints = True

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        self.check_checkpoints(model)
        total = None
        for params, lr in progress(model.checkpoint_params(), desc="checkpoints"):
            s = lr * _ip_at(model, objective, params, X, y, batch_size)
            total = s if total is None else total + s
        return total
