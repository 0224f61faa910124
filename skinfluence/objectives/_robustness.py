"""Robustness: loss on adversarial copies of the validation rows."""

from __future__ import annotations

from numbers import Integral, Real

import torch

from .._kernels import row_chunks, to_device
from .._sklearn_compat import Interval, StrOptions
from .._sparse import rows_of
from ._base import OBJECTIVES, Objective
from ._utility import _MeanLoss
from ._validation import prepare_validation

ATTACKS = ("fgsm", "pgd")


@OBJECTIVES.register
class Robustness(Objective):
    """Mean loss on adversarial copies of the validation rows.

    The copies are built once, at the fitted parameters, in the model's input
    space (after a Pipeline's preprocessing), within an L-infinity ball of
    radius ``epsilon``: FGSM takes one signed-gradient step of size
    ``epsilon``; PGD takes ``steps`` steps of size ``step_size`` (default
    ``2.5 * epsilon / steps``), each projected back on the ball.

    Parameters
    ----------
    attack : {"fgsm", "pgd"}, default="fgsm"
    epsilon : float, default=0.1
        Radius of the L-infinity ball.
    steps : int, default=10
        PGD iterations (ignored by FGSM).
    step_size : float, default=None
        PGD step; ``None`` means ``2.5 * epsilon / steps``.

    Notes
    -----
    Every feature moves, so the copies of sparse validation rows are dense
    (``n_val x n_features`` numbers).

    Examples
    --------
    >>> from skinfluence.objectives import Robustness
    >>> Robustness(attack="pgd", epsilon=0.05)
    Robustness(attack='pgd', epsilon=0.05)
    """

    _key = "robustness"
    _parameter_constraints: dict = {
        "attack": [StrOptions(set(ATTACKS))],
        "step_size": [Interval(Real, 0, None, closed="neither"), None],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "steps": [Interval(Integral, 1, None, closed="left")],
    }

    needs_input_gradient = True

    def __init__(
        self,
        attack: str = "fgsm",
        epsilon: float = 0.1,
        steps: int = 10,
        step_size=None,
    ) -> None:
        self.attack = attack
        self.epsilon = epsilon
        self.steps = steps
        self.step_size = step_size

    def perturb(self, model, X, y, batch_size: int = 4096) -> torch.Tensor:
        """Adversarial copies of ``X`` (model input tensors) at the fitted params."""
        self.validate()
        eps = float(self.epsilon)
        steps = 1 if self.attack == "fgsm" else int(self.steps)
        alpha = eps if self.attack == "fgsm" else (self.step_size or 2.5 * eps / steps)
        params = model.params
        out = []
        for sl in row_chunks(X, batch_size):
            x0, yb = to_device(model, X, y, sl)
            x0 = rows_of(x0)  # the copies are dense: every feature moves
            x = x0.clone()
            for _ in range(steps):
                x.requires_grad_(True)
                with torch.enable_grad():
                    loss = model.row_loss(params, x, yb).sum()
                    (g,) = torch.autograd.grad(loss, x)
                with torch.no_grad():
                    x = x + alpha * g.sign()
                    x = x0 + (x - x0).clamp(-eps, eps)
            out.append(x.detach().cpu())
        return torch.cat(out)

    def bind(self, model, X_val, y_val, sensitive_features=None):
        """Build the adversarial rows once and return their mean loss."""
        self.validate()
        X, y = prepare_validation(model, X_val, y_val)
        return _MeanLoss(model, self.perturb(model, X, y), y)
