"""The signals, one class each (see :class:`SignalMethod`).

As pruning methods they score ``-signal``: an ``InfluenceFilter`` with
``method="signal_aai"`` drops the rows with the largest AAI. Signals that
read validation rows take them as given (``X_val``, or the filter's held-out
split), whatever the objective: they are defined on the per-row validation
losses, not on an objective's value.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor

from .._sklearn_compat import Interval
from ..methods import Loss, Method, SelfInfluence
from ._signals import SignalContext, SignalMethod, register_signal


class _MethodSignal(SignalMethod):
    """Minus the score of an objective-free method, computed by that method."""

    _method: type[Method]

    def compute(self, context: SignalContext) -> Tensor:
        """The signal of the rows of ``context``."""
        return -self._method().score(
            context.model, None, context.X, context.y, batch_size=context.batch_size
        )


@register_signal
class SignalSelfInfluence(_MethodSignal):
    """Self-influence ``sum_t eta_t ||grad l_i(theta_t)||^2``.

    The value :class:`skinfluence.methods.SelfInfluence` scores (negated),
    computed by it. Uses no validation rows.

    Examples
    --------
    >>> from skinfluence.signals import SignalSelfInfluence
    >>> SignalSelfInfluence()._key
    'signal_self_influence'
    """

    signal = "self_influence"
    _method = SelfInfluence


class _ProjectedSignal(SignalMethod):
    needs_validation_rows = True
    _parameter_constraints: dict = {
        "projection_dim": [Interval(Integral, 1, None, closed="left"), None]
    }

    def __init__(self, projection_dim: int | None = None) -> None:
        self.projection_dim = projection_dim

    def context_params(self) -> dict:
        """The projection of the influence matrix."""
        return {"projection_dim": self.projection_dim}


@register_signal
class SignalAAI(_ProjectedSignal):
    """Average absolute influence ``(1/m) sum_j |I_ij|``.

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

    signal = "aai"

    def compute(self, context: SignalContext) -> Tensor:
        """The signal of the rows of ``context``."""
        return context.abs_sum / len(context.X_val)


@register_signal
class SignalMAI(_ProjectedSignal):
    """Marginal absolute influence ``sum_j |I_ij|``.

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

    signal = "mai"

    def compute(self, context: SignalContext) -> Tensor:
        """The signal of the rows of ``context``."""
        return context.abs_sum


@register_signal
class SignalMI(SignalMethod):
    """``mi = -sum_j I_ij``: large for the rows most harmful in total.

    Examples
    --------
    >>> from skinfluence.signals import SignalMI
    >>> SignalMI()._key
    'signal_mi'
    """

    signal = "mi"
    needs_validation_rows = True

    def compute(self, context: SignalContext) -> Tensor:
        """The signal of the rows of ``context``."""
        return -context.signed_sum


@register_signal
class SignalGDClass(SignalMethod):
    """``gd_class = -min_c sum_{j: y_j=c} I_ij``: large for rows that hurt a class.

    Examples
    --------
    >>> from skinfluence.signals import SignalGDClass
    >>> SignalGDClass()._key
    'signal_gd_class'
    """

    signal = "gd_class"
    needs_validation_rows = True

    def compute(self, context: SignalContext) -> Tensor:
        """The signal of the rows of ``context``."""
        return -torch.stack(list(context.class_sums.values())).amin(0)


@register_signal
class SignalLoss(_MethodSignal):
    """The training loss ``l_i(theta)`` at the fitted parameters.

    The value :class:`skinfluence.methods.Loss` scores (negated), computed by
    it. Uses no validation rows.

    Examples
    --------
    >>> from skinfluence.signals import SignalLoss
    >>> SignalLoss()._key
    'signal_loss'
    """

    signal = "loss"
    _method = Loss


@register_signal
class SignalAUM(SignalMethod):
    """Minus the area under the margin, ``aum = -mean_t margin_i(theta_t)``.

    Uses no validation rows; with no checkpoints, the margin at the fitted
    model.

    Examples
    --------
    >>> from skinfluence.signals import SignalAUM
    >>> SignalAUM()._key
    'signal_aum'
    """

    signal = "aum"

    def compute(self, context: SignalContext) -> Tensor:
        """The signal of the rows of ``context``."""
        return -context.margins.mean(0)


@register_signal
class SignalInstability(SignalMethod):
    """Mean absolute change of ``||grad l_i(theta_t)||^2`` between checkpoints.

    Needs at least two recorded checkpoints. Uses no validation rows.

    Examples
    --------
    >>> from skinfluence.signals import SignalInstability
    >>> SignalInstability()._key
    'signal_instability'
    """

    signal = "instability"
    needs_checkpoints = True

    def compute(self, context: SignalContext) -> Tensor:
        """The signal of the rows of ``context``."""
        s = context.sq_norm_trajectory
        return (s[1:] - s[:-1]).abs().mean(0)


@register_signal
class SignalRelativeInstability(SignalMethod):
    """``relative_instability = instability / aai``.

    Needs at least two recorded checkpoints and validation rows.

    Examples
    --------
    >>> from skinfluence.signals import SignalRelativeInstability
    >>> SignalRelativeInstability()._key
    'signal_relative_instability'
    """

    signal = "relative_instability"
    needs_validation_rows = True
    needs_checkpoints = True

    def compute(self, context: SignalContext) -> Tensor:
        """The signal of the rows of ``context``."""
        aai = context.value(SignalAAI())
        tiny = torch.finfo(aai.dtype).tiny
        return context.value(SignalInstability()) / aai.clamp_min(tiny)
