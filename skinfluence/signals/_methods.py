"""Every signal as a pruning :class:`~skinfluence.methods.Method`.

Methods score "higher = more beneficial" and the lowest are pruned, so the
wrapper of a signal returns ``-signal``: an ``InfluenceFilter`` with
``method="signal_aai"`` drops the rows with the largest AAI. The validation
rows are those the objective was bound to (``X_val``, or the filter's
held-out split); only the rows are used, not the objective's value: the
signals are defined on the per-row validation losses.
"""

from __future__ import annotations

from ..methods import METHODS, Method
from ._signals import SignalContext


class SignalMethod(Method):
    """Base of the signal methods: ``score = -signal``.

    Subclasses set ``_signal`` (a key of ``skinfluence.signals.SIGNALS``) and
    ``_key`` (``"signal_" + _signal``).
    """

    _signal: str = ""
    #: the signals are defined over training checkpoints: a meta-estimator
    #: that fits a skorch net for this method records them
    wants_checkpoints = True

    def _context_kwargs(self) -> dict:
        return {}

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Minus the signal of the rows ``X`` (see :meth:`Method.score`)."""
        X_val = y_val = None
        if objective is not None:
            X_val, y_val = objective.X, objective.y
        ctx = SignalContext(
            model,
            X,
            y,
            X_val,
            y_val,
            batch_size=batch_size,
            random_state=random_state,
            **self._context_kwargs(),
        )
        return -ctx.compute(self._signal)


@METHODS.register
class SignalSelfInfluence(SignalMethod):
    """Prune the rows of largest self-influence ``sum_t eta_t ||grad l_i||^2``.

    Equal to :class:`skinfluence.methods.SelfInfluence`, under the signals'
    name. Uses no objective.

    Examples
    --------
    >>> from skinfluence.signals import SignalSelfInfluence
    >>> SignalSelfInfluence()._key
    'signal_self_influence'
    """

    _key = "signal_self_influence"
    _signal = "self_influence"
    needs_objective = False


class _ProjectedSignal(SignalMethod):
    def __init__(self, projection_dim: int | None = None) -> None:
        self.projection_dim = projection_dim

    def _context_kwargs(self) -> dict:
        return {"projection_dim": self.projection_dim}


@METHODS.register
class SignalAAI(_ProjectedSignal):
    """Prune the rows of largest average absolute influence ``(1/m) sum_j |I_ij|``.

    Parameters
    ----------
    projection_dim : int, default=None
        Estimate ``I`` from a seeded Gaussian sketch of this dimension (the
        method's ``random_state`` seeds it); ``None`` is exact.

    Examples
    --------
    >>> from skinfluence.signals import SignalAAI
    >>> SignalAAI(projection_dim=128)
    SignalAAI(projection_dim=128)
    """

    _key = "signal_aai"
    _signal = "aai"


@METHODS.register
class SignalMAI(_ProjectedSignal):
    """Prune the rows of largest marginal absolute influence ``sum_j |I_ij|``.

    Parameters
    ----------
    projection_dim : int, default=None
        As in :class:`SignalAAI`.

    Examples
    --------
    >>> from skinfluence.signals import SignalMAI
    >>> SignalMAI()._key
    'signal_mai'
    """

    _key = "signal_mai"
    _signal = "mai"


@METHODS.register
class SignalMI(SignalMethod):
    """Prune the rows of largest ``mi = -sum_j I_ij`` (most harmful in total).

    Examples
    --------
    >>> from skinfluence.signals import SignalMI
    >>> SignalMI()._key
    'signal_mi'
    """

    _key = "signal_mi"
    _signal = "mi"


@METHODS.register
class SignalGDClass(SignalMethod):
    """Prune the rows of largest ``gd_class = -min_c sum_{j: y_j=c} I_ij``.

    Examples
    --------
    >>> from skinfluence.signals import SignalGDClass
    >>> SignalGDClass()._key
    'signal_gd_class'
    """

    _key = "signal_gd_class"
    _signal = "gd_class"


@METHODS.register
class SignalLoss(SignalMethod):
    """Prune the rows of largest training loss at the fitted parameters.

    Equal to :class:`skinfluence.methods.Loss`. Uses no objective.

    Examples
    --------
    >>> from skinfluence.signals import SignalLoss
    >>> SignalLoss()._key
    'signal_loss'
    """

    _key = "signal_loss"
    _signal = "loss"
    needs_objective = False


@METHODS.register
class SignalAUM(SignalMethod):
    """Prune the rows of smallest area under the margin (``aum = -mean_t margin``).

    Uses no objective; with no checkpoints, the margin at the fitted model.

    Examples
    --------
    >>> from skinfluence.signals import SignalAUM
    >>> SignalAUM()._key
    'signal_aum'
    """

    _key = "signal_aum"
    _signal = "aum"
    needs_objective = False


@METHODS.register
class SignalInstability(SignalMethod):
    """Prune the rows of largest ``instability`` across training checkpoints.

    Needs at least two recorded checkpoints. Uses no objective.

    Examples
    --------
    >>> from skinfluence.signals import SignalInstability
    >>> SignalInstability()._key
    'signal_instability'
    """

    _key = "signal_instability"
    _signal = "instability"
    needs_objective = False
    needs_checkpoints = True


@METHODS.register
class SignalRelativeInstability(SignalMethod):
    """Prune the rows of largest ``relative_instability = instability / aai``.

    Needs at least two recorded checkpoints and validation rows.

    Examples
    --------
    >>> from skinfluence.signals import SignalRelativeInstability
    >>> SignalRelativeInstability()._key
    'signal_relative_instability'
    """

    _key = "signal_relative_instability"
    _signal = "relative_instability"
    needs_checkpoints = True


#: signal name -> its Method class
SIGNAL_METHODS = {
    cls._signal: cls
    for cls in (
        SignalSelfInfluence,
        SignalAAI,
        SignalMAI,
        SignalMI,
        SignalGDClass,
        SignalLoss,
        SignalAUM,
        SignalInstability,
        SignalRelativeInstability,
    )
}
