"""Methods: one score per training row (higher = more beneficial)."""

from __future__ import annotations

from sklearn.base import BaseEstimator

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
    #: whether :meth:`score` inverts the curvature of the training objective
    #: (its family must have one: no L1 penalty)
    inverts_curvature: bool = False
    #: whether :meth:`score` reads the validation rows themselves: it then
    #: gets ``validation=(X_val, y_val)``, prepared like ``X`` and ``y``
    needs_validation_rows: bool = False
    #: whether :meth:`score` needs recorded training checkpoints
    needs_checkpoints: bool = False
    #: whether :meth:`score` uses checkpoints when there are any, so that a
    #: meta-estimator fitting a skorch net for it records them
    wants_checkpoints: bool = False

    #: the constructor parameters' accepted values, in scikit-learn's format
    _parameter_constraints: dict = {}

    def validate(self) -> None:
        """Check the parameters (cheap, before any training); raise ValueError.

        Checks them against ``_parameter_constraints``.
        """
        self._validate_params()

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
        validation : tuple of (Tensor, Tensor)
            Passed only to a method with ``needs_validation_rows``: the
            validation rows as given (not an objective's transformation of
            them), prepared like ``X`` and ``y``.

        Returns
        -------
        Tensor of shape (n_rows,)
        """
        raise NotImplementedError

    def _name(self) -> str:
        """The key the method is known by (its class name when it has none)."""
        return self._key or type(self).__name__

    def check_checkpoints(self, model) -> None:
        """Raise ValueError when the method needs checkpoints and ``model`` has none.

        The message names the method by its key, as the user wrote it.

        Parameters
        ----------
        model : TorchModel

        Examples
        --------
        >>> import torch
        >>> from skinfluence.methods import TracIn
        >>> from skinfluence.models import as_torch_model
        >>> loss = torch.nn.CrossEntropyLoss()
        >>> model = as_torch_model(torch.nn.Linear(2, 2), loss=loss)
        >>> TracIn().check_checkpoints(model)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: method='tracin' needs training checkpoints, ...
        """
        if self.needs_checkpoints and not model.checkpoints:
            raise ValueError(
                f"method={self._name()!r} needs training checkpoints, and this "
                "model has none. For skorch, add "
                "skinfluence.callbacks.TracInCheckpoints() to the net's callbacks "
                "before fitting; for a torch module, pass checkpoints= to "
                "as_torch_model."
            )


METHODS = Registry(Method, "method")
