"""Methods: one score per training row (higher = more beneficial)."""

from __future__ import annotations

import copy

import torch
from sklearn.base import BaseEstimator

from .._kernels import derive_seed
from .._registry import Registry


class Method(BaseEstimator):
    """Base class of scoring methods: subclasses implement :meth:`score`.

    A subclass sets a string ``_key`` and is registered with
    ``METHODS.register``; the key is then accepted wherever a method is.
    Scores follow one sign: higher means the row is more beneficial to the
    objective, so the lowest scores are pruned. ``action="relabel"`` asks
    :meth:`score_relabel` for every row's score under every class: a method
    whose row scores read only their own row's label sets
    ``row_separable = True`` and inherits it; one whose scores depend on
    every row's label (a curvature, a kernel) implements it with those
    quantities at the true labels.
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
    #: whether the score of a row depends on the other rows only through the
    #: objective's gradients (and the seed), never through their labels or
    #: values: then the scores of some rows are those of all rows, restricted
    #: to them (so Dask scores block by block), and :meth:`score_relabel`
    #: may rescore the rows with each label
    row_separable: bool = False
    #: whether the scores are seeded draws that read neither the model nor
    #: the rows (the random baseline): Dask draws them per group of rows,
    #: so that they do not depend on the blocks
    random_draws: bool = False

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

    def score_relabel(
        self,
        model,
        objective,
        X,
        y,
        *,
        n_classes,
        batch_size,
        random_state=None,
        **kwargs,
    ):
        """Score every row as if its label were each class in turn.

        Entry ``[c, i]`` is the score row ``i`` would have if its label were
        class ``c``, everything that depends on the training labels (the
        objective's gradients, an inverse curvature, kernels, seeds) being
        taken once at the true labels ``y``. Relabelling row ``i`` from
        ``y_i`` to ``c`` then changes the objective by about ``s[y_i, i] -
        s[c, i]`` (DESIGN section 3).

        This default serves methods with ``row_separable``, whose only use of
        a row's label is in that row's own score (:class:`IP`,
        :class:`IPEnsemble`, :class:`TracIn`, and the objective-free
        :class:`SelfInfluence` and :class:`Loss`): it runs :meth:`score`
        once per class with every row labelled ``c``, the objective's
        gradients computed on the first pass and replayed on the others, and
        the same seed on every pass. So ``v = grad J`` is computed once per
        parameter point, and each class costs one forward-mode pass
        (:func:`~skinfluence.kernels.grad_dot`) per point. A method whose
        scores depend on every row's label (through a curvature or a kernel)
        overrides it; one that does neither refuses (see
        :meth:`check_relabel`).

        Parameters
        ----------
        model : TorchModel
        objective : BoundObjective or None
        X, y : Tensor
            Training rows in the model's input space and their true class
            indices (CPU).
        n_classes : int
            Number of classes: the rows of the result are classes
            ``0, ..., n_classes - 1``.
        batch_size : int
        random_state : int, RandomState or None
            As for :meth:`score`; every class sees the same draws.
        **kwargs
            Passed to :meth:`score` (``validation``).

        Returns
        -------
        Tensor of shape (n_classes, n_rows)

        Notes
        -----
        The replayed gradients are held for the whole call: one parameter
        dict per point a method asks at (``n_members`` for
        :class:`IPEnsemble`, one per checkpoint for :class:`TracIn`).

        Examples
        --------
        For "ip", row ``[c, i]`` is ``<grad J, grad l(x_i, c)>``, the true
        label's row is the ordinary score:

        >>> import numpy as np
        >>> from sklearn.datasets import make_classification
        >>> from sklearn.linear_model import LogisticRegression
        >>> from skinfluence.methods import IP
        >>> from skinfluence.models import as_torch_model
        >>> from skinfluence.objectives import Utility
        >>> X, y = make_classification(n_samples=60, n_features=4, random_state=0)
        >>> model = as_torch_model(LogisticRegression().fit(X[:40], y[:40]))
        >>> J = Utility().bind(model, X[40:], y[40:])
        >>> Xt, yt = model.prepare_X(X[:40]), model.prepare_y(y[:40])
        >>> s = IP().score_relabel(model, J, Xt, yt, n_classes=2, batch_size=16)
        >>> s.shape
        torch.Size([2, 40])
        >>> own = IP().score(model, J, Xt, yt, batch_size=16)
        >>> bool(np.allclose(s[yt, np.arange(40)], own, rtol=1e-12))
        True
        """
        self.check_relabel()
        frozen = derive_seed(None) if random_state is None else random_state
        once = None if objective is None else _GradientsOnce(objective)
        out = []
        for c in range(n_classes):
            labels = torch.full((len(X),), c, dtype=torch.int64)
            draw = copy.deepcopy(frozen)  # a RandomState: the same draws per class
            scores = self.score(
                model,
                once,
                X,
                labels,
                batch_size=batch_size,
                random_state=draw,
                **kwargs,
            )
            out.append(torch.as_tensor(scores))
            if once is not None:
                once.rewind()
        if not out:
            return torch.zeros(0, len(X), dtype=torch.float64)
        return torch.stack(out)

    def check_relabel(self) -> None:
        """Raise ValueError when the method defines no relabel scores.

        A method has them when it overrides :meth:`score_relabel` or is
        ``row_separable`` (the default then applies). Called before any
        training by ``action="relabel"``.

        Examples
        --------
        >>> from skinfluence.methods import IP, Method
        >>> IP().check_relabel()  # no error
        >>> class Custom(Method):
        ...     _key = "custom_doc"
        >>> Custom().check_relabel()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: method='custom_doc' defines no relabel scores...
        """
        if type(self).score_relabel is Method.score_relabel and not self.row_separable:
            raise ValueError(
                f"method={self._name()!r} defines no relabel scores: its scores "
                "depend on every training row's label, and it does not say how "
                "to score a label change with those held at the true labels. "
                "Use action='remove' or 'reweight', or another method; a Method "
                "subclass can implement score_relabel (or set row_separable = "
                "True when a row's label enters only its own score)."
            )

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


class _GradientsOnce:
    """An objective whose gradients are computed on one pass and replayed on the next.

    The first pass over it computes and keeps every gradient a method asks
    for; after :meth:`rewind`, a pass gets the kept ones back in the same
    order, and raises if it asks at other parameters (a method whose calls
    depend on the labels or on fresh randomness).
    """

    def __init__(self, bound) -> None:
        self.bound = bound
        self._calls: list[tuple[dict, dict]] = []
        self._next: int | None = None  # None: computing; else the call to replay

    def rewind(self) -> None:
        """Replay the kept gradients from the first."""
        self._next = 0

    def gradient(self, params=None, batch_size: int = 4096) -> dict:
        params = self.bound.model.params if params is None else params
        if self._next is None:
            v = self.bound.gradient(params, batch_size=batch_size)
            self._calls.append((dict(params), v))
            return v
        if self._next >= len(self._calls) or not _same(
            self._calls[self._next][0], params
        ):
            raise RuntimeError(
                "The method asked for the objective's gradient at other parameters "
                "for another label: its relabel scores need a score_relabel of "
                "their own."
            )
        self._next += 1
        return dict(self._calls[self._next - 1][1])

    def __getattr__(self, name):
        return getattr(self.bound, name)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k] is b[k] or torch.equal(a[k], b[k]) for k in a
    )


METHODS = Registry(Method, "method")
