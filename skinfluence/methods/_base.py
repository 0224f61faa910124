"""Methods: one score per training row (higher = more beneficial)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from .._registry import Registry


class Method(BaseEstimator):
    """Base class of scoring methods: subclasses implement :meth:`score`.

    A subclass sets a string ``_key`` and is registered with
    ``METHODS.register``; the key is then accepted wherever a method is.
    Scores follow one sign: higher means the row is more beneficial to the
    objective, so the lowest scores are pruned.
    """

    _key: str = ""
    #: whether :meth:`score` uses the objective (else it may receive None)
    needs_objective: bool = True
    #: whether :meth:`score` needs recorded training checkpoints
    needs_checkpoints: bool = False
    #: whether :meth:`score` uses checkpoints when there are any, so that a
    #: meta-estimator fitting a skorch net for it records them
    wants_checkpoints: bool = False

    def validate(self) -> None:
        """Check the parameters (cheap, before any training); raise ValueError."""

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Score the training rows.

        Parameters
        ----------
        model : TorchModel
            The fitted model.
        objective : BoundObjective or None
            The objective bound to the validation rows.
        X, y : Tensor
            Training rows in the model's input space, and class indices (CPU).
        batch_size : int
            Rows per chunk.
        random_state : int, RandomState or None
            Seed for randomised methods.

        Returns
        -------
        Tensor of shape (n_rows,)
        """
        raise NotImplementedError


def torch_generator(random_state) -> torch.Generator:
    """A CPU torch generator seeded from a scikit-learn ``random_state``."""
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    return torch.Generator().manual_seed(seed)


METHODS = Registry(Method, "method")
