"""The signals: one suspicion score per training row, larger = more suspicious.

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

``I_ij > 0`` means that a gradient step on row ``i`` lowers the loss of
validation row ``j``, so the signed sums are negated: ``mi`` is large for a
row whose steps raise the validation loss in total, ``gd_class`` for a row
that raises the loss of some class.

``instability`` is the total variation of a row's self-influence trajectory:
how much its squared gradient norm moves from one checkpoint to the next.
Clean rows settle (their gradient norm shrinks and stays small), mislabeled
rows keep a large but steady gradient, while the model's behaviour on an
out-of-distribution row is not pinned down by any neighbour, so every epoch
moves it and its gradient norm swings. It was chosen among loss-, margin-,
gradient- and self-influence-trajectory statistics on development seeds of
the detection benchmark (``benchmarks/bench_detection.py``), not on the
evaluation seeds.

``relative_instability`` divides it by the row's average absolute influence
on the validation rows. An anomaly moves a lot during training but, lying
where no validation row lies, its gradient is nearly orthogonal to theirs;
a hard in-distribution row that moves as much also pushes its neighbours.
The ratio keeps working when the anomalies are fitted (a cluster of
corrupted records sharing one label), where their loss, self-influence and
instability fade. It was designed on the same development seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import torch
from torch import Tensor
from torch.func import grad

from .._kernels import chunks, grad_dot, grad_sq_norms, row_losses, to_device
from ..models import TorchModel
from ._matrix import checkpoints_or_final, iter_influence_blocks

#: signal name -> (needs validation rows, needs >= 2 checkpoints)
SIGNALS: dict[str, tuple[bool, bool]] = {
    "self_influence": (False, False),
    "aai": (True, False),
    "mai": (True, False),
    "mi": (True, False),
    "gd_class": (True, False),
    "loss": (False, False),
    "aum": (False, False),
    "instability": (False, True),
    "relative_instability": (True, True),
}


def _check_signals(signals) -> list[str]:
    if isinstance(signals, str):
        signals = [signals]
    signals = list(signals)
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown:
        raise ValueError(f"Unknown signals {unknown}; choose from {list(SIGNALS)}.")
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


class SignalContext:
    """Shared, lazily computed quantities of the signals of one model.

    Parameters
    ----------
    model : TorchModel
    X, y : Tensor
        Training rows (model input space) and class indices.
    X_val, y_val : Tensor or None
        Validation rows and class indices.
    batch_size : int
    projection_dim, random_state, method
        For ``aai`` and ``mai``: see
        :func:`skinfluence.signals.iter_influence_blocks`.
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
        method: str = "auto",
    ) -> None:
        self.model = model
        self.X, self.y = X, y
        self.X_val, self.y_val = X_val, y_val
        self.batch_size = batch_size
        self.projection_dim = projection_dim
        self.random_state = random_state
        self.method = method
        self.checkpoints = checkpoints_or_final(model)

    # ------------------------------------------------------------ influence
    def _val_gradient(self, params, rows: Tensor | None) -> dict[str, Tensor]:
        """Gradient of the summed loss of validation ``rows`` (all if None)."""
        model = self.model
        X, y = self.X_val, self.y_val
        if rows is not None:
            X, y = X[rows], y[rows]

        def total(p, Xb, yb):
            return model.row_loss(p, Xb, yb).sum()

        params = {k: p.detach() for k, p in params.items()}
        out = {k: torch.zeros_like(p) for k, p in params.items()}
        for sl in chunks(len(X), self.batch_size):
            g = grad(total)(params, *to_device(model, X, y, sl))
            for k in out:
                out[k] += g[k].detach()
        return out

    def _signed_sum(self, rows: Tensor | None) -> Tensor:
        """``sum_{j in rows} I_ij`` for every i: one JVP per checkpoint."""
        total = None
        for params, lr in self.checkpoints:
            v = self._val_gradient(params, rows)
            s = lr * grad_dot(self.model, params, v, self.X, self.y, self.batch_size)
            total = s if total is None else total + s
        return total

    @cached_property
    def class_sums(self) -> dict[int, Tensor]:
        """Class index -> ``sum_{j: y_j = c} I_ij``, for classes in y_val."""
        return {
            int(c): self._signed_sum(self.y_val == c)
            for c in torch.unique(self.y_val).tolist()
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
        out = torch.empty(len(self.X), dtype=self.model.dtype, device=self.model.device)
        blocks = iter_influence_blocks(
            self.model,
            self.X,
            self.y,
            self.X_val,
            self.y_val,
            checkpoints=self.checkpoints,
            batch_size=self.batch_size,
            method=self.method,
            projection_dim=self.projection_dim,
            random_state=self.random_state,
        )
        for sl, block in blocks:
            out[sl] = block.abs().sum(1)
        return out

    # ------------------------------------------------------------- dynamics
    @cached_property
    def trajectories(self) -> tuple[Tensor, Tensor]:
        """Per-row losses and margins at every checkpoint, each ``(T, n)``."""
        model = self.model
        losses, margins = [], []
        with torch.no_grad():
            for params, _ in self.checkpoints:
                ls, ms = [], []
                for sl in chunks(len(self.X), self.batch_size):
                    Xb, yb = to_device(model, self.X, self.y, sl)
                    ls.append(model.row_loss(params, Xb, yb))
                    ms.append(margins_from_log_proba(model.log_proba(params, Xb), yb))
                losses.append(torch.cat(ls))
                margins.append(torch.cat(ms))
        return torch.stack(losses), torch.stack(margins)

    # -------------------------------------------------------------- signals
    def compute(self, name: str) -> Tensor:
        """The signal ``name`` for every training row, shape ``(n,)``."""
        needs_val, needs_dynamics = SIGNALS[name]
        if needs_val and (self.X_val is None or self.y_val is None):
            raise ValueError(
                f"The signal {name!r} needs validation rows (X_val, y_val)."
            )
        if needs_dynamics and len(self.model.checkpoints) < 2:
            raise ValueError(
                f"The signal {name!r} follows rows across training checkpoints and "
                f"needs at least 2 of them; the model has {len(self.model.checkpoints)}. "
                "For skorch, add skinfluence.callbacks.TracInCheckpoints() to the "
                "net's callbacks (compute_signals does this for an unfitted net)."
            )
        return getattr(self, f"_signal_{name}")()

    def _signal_self_influence(self) -> Tensor:
        s = self.sq_norm_trajectory
        lrs = torch.tensor([lr for _, lr in self.checkpoints], dtype=torch.float64)
        return (lrs.to(s.device, s.dtype)[:, None] * s).sum(0)

    def _signal_aai(self) -> Tensor:
        return self.abs_sum / len(self.X_val)

    def _signal_mai(self) -> Tensor:
        return self.abs_sum

    def _signal_mi(self) -> Tensor:
        return -self.signed_sum

    def _signal_gd_class(self) -> Tensor:
        return -torch.stack(list(self.class_sums.values())).amin(0)

    def _signal_loss(self) -> Tensor:
        return row_losses(
            self.model, self.model.params, self.X, self.y, self.batch_size
        )

    def _signal_aum(self) -> Tensor:
        return -self.trajectories[1].mean(0)

    def _signal_instability(self) -> Tensor:
        s = self.sq_norm_trajectory
        return (s[1:] - s[:-1]).abs().mean(0)

    def _signal_relative_instability(self) -> Tensor:
        aai = self.abs_sum / len(self.X_val)
        return self._signal_instability() / aai.clamp_min(torch.finfo(aai.dtype).tiny)

    @cached_property
    def sq_norm_trajectory(self) -> Tensor:
        """``||grad l_i(theta_t)||^2`` per checkpoint, ``(T, n)``."""
        return torch.stack(
            [
                grad_sq_norms(self.model, params, self.X, self.y, self.batch_size)
                for params, _ in self.checkpoints
            ]
        )


def compute_signal_tensors(
    model: TorchModel,
    X: Tensor,
    y: Tensor,
    X_val: Tensor | None,
    y_val: Tensor | None,
    signals: Sequence[str],
    **kwargs,
) -> dict[str, Tensor]:
    """Every signal in ``signals``, sharing the work between them."""
    ctx = SignalContext(model, X, y, X_val, y_val, **kwargs)
    return {name: ctx.compute(name) for name in _check_signals(signals)}
