"""A signal is one class: one suspicion score per training row, larger = more suspicious.

With ``I_ij = sum_t eta_t <grad l_i(theta_t), grad l_j(theta_t)>`` between
training row ``i`` and validation row ``j`` (checkpoints ``t``; the fitted
model alone, ``eta = 1``, when there are none):

========================  ==================================================
``self_influence``        ``sum_t eta_t ||grad l_i(theta_t)||^2``
``aai``                   ``(1/m) sum_j |I_ij|``
``mai``                   ``sum_j |I_ij|``
``mi``                    ``-sum_j I_ij``
``gd_class``              ``-min_c sum_{j: y_j = c} I_ij`` (classes in y_val)
``loss``                  ``l_i(theta)`` at the fitted parameters
``aum``                   ``-(1/T) sum_t margin_i(theta_t)``
``instability``           ``(1/(T-1)) sum_t |s_i(t+1) - s_i(t)|``,
                          ``s_i(t) = ||grad l_i(theta_t)||^2``
``relative_instability``  ``instability_i / aai_i``
========================  ==================================================

Each signal is a :class:`SignalMethod` subclass (``_methods.py``) that names
itself (``signal``), says what it needs (``needs_validation_rows``,
``needs_checkpoints``: at least two) and computes its value from a
:class:`SignalContext`, which holds the quantities several signals share
and computes each at most once. :func:`register_signal` registers the class
once; the table :data:`SIGNALS`, the map :data:`SIGNAL_METHODS`, the method
key ``"signal_<name>"`` and the names ``compute_signals`` accepts all follow
from it.
"""

from __future__ import annotations

from functools import cached_property
from types import MappingProxyType

import torch
from torch import Tensor

from .._kernels import grad_dot, grad_sq_norms, row_chunks, to_device
from ..methods import METHODS, Method
from ..models import TorchModel
from ..objectives import BoundObjective
from ._matrix import checkpoints_or_final, iter_influence_blocks

_TABLE: dict[str, tuple[bool, bool]] = {}
_CLASSES: dict[str, type[SignalMethod]] = {}

#: signal name -> (needs validation rows, needs >= 2 checkpoints), read-only
SIGNALS = MappingProxyType(_TABLE)
#: signal name -> its :class:`SignalMethod` class, read-only
SIGNAL_METHODS = MappingProxyType(_CLASSES)


class SignalMethod(Method):
    """Base class of the signals; each signal is also a pruning method.

    A signal is one subclass, decorated with ``register_signal``. It sets

    - ``signal``: its name (the method key is ``"signal_" + signal``);
    - ``needs_validation_rows``: whether it reads validation rows;
    - ``needs_checkpoints``: whether it needs at least two training
      checkpoints;

    and implements :meth:`compute`, the signal (larger = more suspicious)
    from a :class:`SignalContext`. As a :class:`~skinfluence.methods.Method`
    it scores ``-signal`` (higher = kept), so a filter drops the most
    suspicious rows. It never uses the objective: only the validation rows,
    as they were given, not an objective's transformation of them (the
    adversarial copies of "robustness").

    Attributes
    ----------
    signal : str
        The signal's name, a key of :data:`SIGNALS`.
    needs_validation_rows : bool
        Whether :meth:`score` needs ``validation=(X_val, y_val)``.

    See Also
    --------
    skinfluence.compute_signals : several signals at once, sharing the work.

    Examples
    --------
    The signal "loss" as a method scores minus the training loss, as
    :class:`skinfluence.methods.Loss` does:

    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import compute_influence
    >>> X, y = make_classification(n_samples=60, random_state=0)
    >>> clf = LogisticRegression().fit(X, y)
    >>> s = compute_influence(clf, X, y, method="signal_loss")
    >>> bool(np.allclose(s, compute_influence(clf, X, y, method="loss")))
    True
    """

    signal: str = ""
    needs_objective = False
    needs_validation_rows: bool = False
    #: a row's signal reads its own label only (Dask scores block by block;
    #: ``action="relabel"`` rescores every row under each class)
    row_separable = True
    #: the signals are defined over training checkpoints: a meta-estimator
    #: that fits a skorch net for one records them
    wants_checkpoints = True

    def compute(self, context: SignalContext) -> Tensor:
        """The signal for every training row of ``context``, shape ``(n,)``."""
        raise NotImplementedError

    def context_params(self) -> dict:
        """Settings of the :class:`SignalContext` this method scores with."""
        return {}

    def score(
        self,
        model,
        objective,
        X,
        y,
        *,
        batch_size,
        random_state=None,
        validation=None,
    ):
        """Minus the signal of the rows ``X``.

        Parameters
        ----------
        model : TorchModel
            The fitted model.
        objective : BoundObjective or None
            Ignored: a signal uses no objective.
        X, y : Tensor
            Training rows in the model's input space, and class indices.
        batch_size : int
            Rows per chunk.
        random_state : int, RandomState or None, default=None
            Seed of a projection (``projection_dim``).
        validation : tuple of (Tensor, Tensor), default=None
            The validation rows ``(X_val, y_val)``, prepared like ``X`` and
            ``y``; needed when ``needs_validation_rows``.

        Returns
        -------
        Tensor of shape (n_rows,)
        """
        X_val, y_val = (None, None) if validation is None else validation
        context = SignalContext(
            model,
            X,
            y,
            X_val,
            y_val,
            batch_size=batch_size,
            random_state=random_state,
            **self.context_params(),
        )
        return -context.value(self)


def register_signal(cls: type[SignalMethod]) -> type[SignalMethod]:
    """Class decorator: make ``cls`` a signal and the method ``"signal_<name>"``.

    Sets ``cls._key``, registers the method, and adds the signal to
    :data:`SIGNALS` and :data:`SIGNAL_METHODS` (so ``compute_signals``
    accepts its name).
    """
    name = cls.signal
    if not (isinstance(name, str) and name) or name in _CLASSES:
        raise ValueError(f"{cls.__name__} needs a new, non-empty `signal` name.")
    cls._key = f"signal_{name}"
    METHODS.register(cls)
    _CLASSES[name] = cls
    _TABLE[name] = (bool(cls.needs_validation_rows), bool(cls.needs_checkpoints))
    return cls


def check_signals(signals) -> list[str]:
    """``signals`` as a list of known, distinct names (a str is one name)."""
    if isinstance(signals, str):
        signals = [signals]
    signals = list(signals)
    unknown = [s for s in signals if s not in _CLASSES]
    if unknown:
        raise ValueError(f"Unknown signals {unknown}; choose from {list(_CLASSES)}.")
    if not signals:
        raise ValueError("signals is empty.")
    if len(set(signals)) != len(signals):
        raise ValueError(f"signals has duplicates: {signals}.")
    return signals


def margins_from_log_proba(lp: Tensor, y: Tensor) -> Tensor:
    """``log p_y - max_{c != y} log p_c`` per row (the logit margin for softmax)."""
    own = lp.gather(1, y[:, None]).squeeze(1)
    other = lp.scatter(1, y[:, None], float("-inf")).amax(1)
    return own - other


class _WeightedLoss(BoundObjective):
    """``sum_j w_j l_j(theta)`` over the validation rows, for fixed weights."""

    def __init__(self, model: TorchModel, X: Tensor, y: Tensor, w: Tensor) -> None:
        super().__init__(model, X, y)
        self.w = w

    def row_values(self, params, Xb: Tensor, yb: Tensor) -> Tensor:
        return self.model.row_loss(params, Xb, yb)

    def row_weights(self, params, batch_size: int) -> Tensor:
        return self.w


class SignalContext:
    """The quantities several signals share, each computed at most once.

    Parameters
    ----------
    model : TorchModel
    X, y : Tensor
        Training rows (model input space) and class indices.
    X_val, y_val : Tensor or None
        Validation rows and class indices.
    batch_size : int
    projection_dim, random_state
        For ``|I_ij|``: see :func:`skinfluence.signals.iter_influence_blocks`.
    """

    def __init__(
        self,
        model: TorchModel,
        X: Tensor,
        y: Tensor,
        X_val: Tensor | None = None,
        y_val: Tensor | None = None,
        *,
        batch_size: int = 512,
        projection_dim: int | None = None,
        random_state=None,
    ) -> None:
        self.model = model
        self.X, self.y = X, y
        self.X_val, self.y_val = X_val, y_val
        self.batch_size = batch_size
        self.projection_dim = projection_dim
        self.random_state = random_state
        self.checkpoints = checkpoints_or_final(model)
        self._values: dict[str, Tensor] = {}

    def value(self, signal: SignalMethod) -> Tensor:
        """``signal.compute(self)``, once, after checking what it needs."""
        name = signal.signal
        if name not in self._values:
            if signal.needs_validation_rows and (
                self.X_val is None or self.y_val is None
            ):
                raise ValueError(
                    f"The signal {name!r} needs validation rows (X_val, y_val)."
                )
            n_ck = len(self.model.checkpoints)
            if signal.needs_checkpoints and n_ck < 2:
                raise ValueError(
                    f"The signal {name!r} follows rows across training checkpoints "
                    f"and needs at least 2 of them; the model has {n_ck}. For "
                    "skorch, add skinfluence.callbacks.TracInCheckpoints() to the "
                    "net's callbacks (compute_signals does this for an unfitted net)."
                )
            self._values[name] = signal.compute(self)
        return self._values[name]

    # ------------------------------------------------------------ influence
    def _signed_sum(self, weights: Tensor | None) -> Tensor:
        """``sum_j w_j I_ij`` for every i (all ``w_j = 1`` if None).

        One backward pass over the validation rows and one JVP over the
        training rows per checkpoint.
        """
        model = self.model
        if weights is None:
            weights = torch.ones(
                len(self.y_val), dtype=model.dtype, device=model.device
            )
        val_loss = _WeightedLoss(model, self.X_val, self.y_val, weights)
        total = None
        for params, lr in self.checkpoints:
            v = val_loss.gradient(params, batch_size=self.batch_size)
            s = lr * grad_dot(model, params, v, self.X, self.y, self.batch_size)
            total = s if total is None else total + s
        return total

    @cached_property
    def class_sums(self) -> dict[int, Tensor]:
        """Class index -> ``sum_{j: y_j = c} I_ij``, for classes in y_val."""
        y_val = self.y_val.to(self.model.device)
        return {
            int(c): self._signed_sum((y_val == c).to(self.model.dtype))
            for c in torch.unique(y_val).tolist()
        }

    @cached_property
    def signed_sum(self) -> Tensor:
        """``sum_j I_ij``."""
        if "class_sums" in self.__dict__:
            return sum(self.class_sums.values())
        return self._signed_sum(None)

    @cached_property
    def abs_sum(self) -> Tensor:
        """``sum_j |I_ij|``, from blocks of ``I`` of bounded size."""
        model = self.model
        out = torch.empty(len(self.X), dtype=model.dtype, device=model.device)
        blocks = iter_influence_blocks(
            model,
            self.X,
            self.y,
            self.X_val,
            self.y_val,
            checkpoints=self.checkpoints,
            batch_size=self.batch_size,
            projection_dim=self.projection_dim,
            random_state=self.random_state,
        )
        for sl, block in blocks:
            out[sl] = block.abs().sum(1)
        return out

    # ------------------------------------------------------------- dynamics
    @cached_property
    def margins(self) -> Tensor:
        """Per-row margins at every checkpoint, ``(T, n)``."""
        model = self.model
        out = []
        with torch.no_grad():
            for params, _ in self.checkpoints:
                ms = []
                for sl in row_chunks(self.X, self.batch_size):
                    Xb, yb = to_device(model, self.X, self.y, sl)
                    ms.append(margins_from_log_proba(model.log_proba(params, Xb), yb))
                out.append(torch.cat(ms))
        return torch.stack(out)

    @cached_property
    def sq_norm_trajectory(self) -> Tensor:
        """``||grad l_i(theta_t)||^2`` per checkpoint, ``(T, n)``."""
        return torch.stack(
            [
                grad_sq_norms(self.model, params, self.X, self.y, self.batch_size)
                for params, _ in self.checkpoints
            ]
        )
