"""Objective-free scores: self_influence, loss, random."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._kernels import grad_sq_norms, row_losses
from .._progress import progress
from ._base import METHODS, Method


@METHODS.register
class SelfInfluence(Method):
    """Negative self-influence: ``-sum_t eta_t ||grad l_i(theta_t)||^2``.

    Over the recorded checkpoints when the model has them (and
    ``use_checkpoints``), else ``-||grad l_i(theta)||^2`` at the fitted
    parameters. Rows the model finds hard to fit (often mislabeled) score
    lowest. Uses no objective.

    With ``action="relabel"`` the score under label ``c`` is
    ``-sum_t eta_t ||grad l(x_i, c; theta_t)||^2``, so the effect of
    relabelling row ``i`` to ``c``, ``s(y_i) - s(c)``, is the drop of its
    gradient norm: a row is given the label under which the model finds it
    easiest, not a predicted change of any objective.

    Parameters
    ----------
    use_checkpoints : bool, default=True
        Sum over recorded checkpoints when there are any.

    Examples
    --------
    >>> from skinfluence.methods import SelfInfluence
    >>> SelfInfluence(use_checkpoints=False).wants_checkpoints
    False
    """

    _key = "self_influence"
    row_separable = True
    _parameter_constraints: dict = {"use_checkpoints": ["boolean"]}
    needs_objective = False

    def __init__(self, use_checkpoints: bool = True) -> None:
        self.use_checkpoints = use_checkpoints

    @property
    def wants_checkpoints(self) -> bool:
        """Checkpoints are used when ``use_checkpoints``."""
        return bool(self.use_checkpoints)

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        cks = model.checkpoint_params() if self.use_checkpoints else []
        if not cks:
            cks = [(model.params, 1.0)]
        total = None
        for params, lr in progress(cks, desc="checkpoints"):
            s = lr * grad_sq_norms(model, params, X, y, batch_size)
            total = s if total is None else total + s
        return -total


@METHODS.register
class Loss(Method):
    """Negative training loss at the fitted parameters: ``-l_i(theta)``.

    With ``action="relabel"`` the effect of relabelling row ``i`` to ``c``
    is ``l(x_i, c) - l(x_i, y_i)``: the rows whose label the model
    disbelieves most are given the class it predicts (the lowest loss), the
    classic relabel-to-prediction heuristic, not a predicted change of any
    objective.

    Examples
    --------
    >>> from skinfluence.methods import Loss
    >>> Loss().needs_objective  # scored without validation rows
    False
    """

    _key = "loss"
    row_separable = True
    needs_objective = False

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        return -row_losses(model, model.params, X, y, batch_size)


@METHODS.register
class Random(Method):
    """A seeded uniform draw in [0, 1): the random-pruning baseline.

    Its relabel scores (:meth:`score_relabel`) are independent draws per
    row and class, so ``action="relabel"`` changes rows drawn at random
    (those whose own draw is not the largest of their row), each to a class
    drawn uniformly among the others: the random-relabelling baseline.

    Examples
    --------
    >>> import torch
    >>> from skinfluence.methods import Random
    >>> X = torch.zeros(3, 1)
    >>> Random().score(None, None, X, None, batch_size=3, random_state=0)
    tensor([0.5488, 0.7152, 0.6028], dtype=torch.float64)
    """

    _key = "random"
    needs_objective = False
    random_draws = True

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        draw = check_random_state(random_state).uniform(size=len(X))
        return torch.as_tensor(draw.astype(np.float64))

    def score_relabel(
        self, model, objective, X, y, *, n_classes, batch_size, random_state=None
    ):
        """Independent draws in [0, 1), shape ``(n_classes, n_rows)``.

        See :meth:`Method.score_relabel` for the signature.

        Examples
        --------
        >>> import torch
        >>> from skinfluence.methods import Random
        >>> s = Random().score_relabel(None, None, torch.zeros(4, 1), None,
        ...                            n_classes=3, batch_size=4, random_state=0)
        >>> tuple(s.shape), bool(((s >= 0) & (s < 1)).all())
        ((3, 4), True)
        """
        draw = check_random_state(random_state).uniform(size=(n_classes, len(X)))
        return torch.as_tensor(draw.astype(np.float64))
