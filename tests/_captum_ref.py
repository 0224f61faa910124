"""Reference TracIn scores computed with captum's ``TracInCP``, plus brute force.

This module is a test/benchmark helper, not part of the ``skinfluence``
package. It gives two independent references for TracIn (checkpoint)
influence scores of training rows, so that the package's own forward-mode
implementation can be compared against them on the same numbers:

* :func:`captum_tracin_aggregate` and :func:`captum_self_influence` use
  ``captum.influence.TracInCP`` (captum >= 0.7; written against 0.9.0);
* :func:`brute_force_tracin` and :func:`brute_force_self_influence` loop over
  training rows and call :func:`torch.autograd.grad` once per row, with no
  captum (the validation gradient is the gradient of the mean validation
  loss, taken in one backward pass).

Definitions
-----------
A checkpoint is a pair ``(params, lr)`` where ``params`` maps every name of
``module.named_parameters()`` to a tensor and ``lr`` is the learning rate
that goes with it. For checkpoints ``t = 1..T`` with parameters
``theta_t``:

* the per-row loss ``l_i(theta)`` of row ``i`` is

  - ``loss="cross_entropy"``: the module outputs logits and
    ``l_i = cross_entropy(logits_i, y_i)``;
  - ``loss="nll_of_probs"``: the module outputs probabilities (e.g. ends in
    a softmax) and ``l_i = -log(p_{i, y_i} + eps)`` with
    ``eps = torch.finfo(dtype).eps``, exactly what skorch's
    ``NeuralNetClassifier.get_loss`` does with ``torch.nn.NLLLoss``;

* the validation loss is the MEAN over validation rows,
  ``L_val(theta) = (1 / n_val) * sum_j l_j(theta)``;
* the TracIn score of training row ``i`` against the validation set is
  ``s_i = sum_t lr_t * < grad L_val(theta_t), grad l_i(theta_t) >``;
* the self-influence of training row ``i`` is
  ``sum_t lr_t * || grad l_i(theta_t) ||^2``.

Gradients are taken with respect to ALL parameters of ``module``. The
module is deep-copied and put in ``eval()`` mode (so dropout is off); the
caller's module is never modified.

Notes on captum's ``TracInCP`` (0.9.0) that this module relies on
-----------------------------------------------------------------
* ``checkpoints`` may be a list of arbitrary objects: only a ``str`` (a
  directory, globbed) or a list whose first element is a ``str`` (file
  paths, re-sorted by captum) is treated as paths; anything else is kept as
  ``list(checkpoints)`` in the given order and each element is handed to
  ``checkpoints_load_func(model, checkpoint)``, whose return value is used
  as the learning rate. We therefore pass the ``(params, lr)`` pairs
  themselves; nothing is written to disk.
* ``sample_wise_grads_per_batch=True`` computes per-sample gradients with
  forward/backward hooks on ``nn.Linear`` and ``nn.Conv2d`` only, and the
  loss must have ``reduction`` ``"sum"`` or ``"mean"``. With ``"mean"``
  captum multiplies the captured output gradients by the batch size, so
  both reductions yield the gradient of the per-row loss (no extra scaling
  needed; checked to agree to ~1e-16 in float64). Parameters of any other
  layer type are SILENTLY left out of the gradient, so this module raises
  if the model has such parameters.
* ``sample_wise_grads_per_batch=False`` loops over the rows of each batch
  (one ``autograd.grad`` per row); the loss must have ``reduction="none"``.
* ``influence(inputs, aggregate=True)`` exists in 0.9.0; it returns a
  ``(1, n_train)`` tensor holding, for each training row, the SUM over the
  test rows of the per-test-row scores, i.e.
  ``sum_t lr_t * < sum_j grad l_j(theta_t), grad l_i(theta_t) >``. We
  divide it by ``n_val`` to get the score against the mean validation loss.
* For the test side captum uses ``test_loss_fn`` but with the TRAIN loss's
  reduction type (``_get_checkpoint_jacobians`` passes
  ``self.reduction_type``), so ``loss_fn`` and ``test_loss_fn`` must share
  one reduction; here they are the same per-row loss.
* ``self_influence(None)`` iterates over the training ``DataLoader`` that
  captum builds from ``train_dataset`` and ``batch_size``
  (``shuffle=False``); no rescaling is applied to its result.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

__all__ = [
    "brute_force_self_influence",
    "brute_force_tracin",
    "captum_self_influence",
    "captum_tracin_aggregate",
    "per_row_loss",
]

LossKind = Literal["cross_entropy", "nll_of_probs"]
Checkpoint = tuple[Mapping[str, torch.Tensor], float]

# Layer types for which captum's hook-based per-sample gradients exist.
_SAMPLE_WISE_SUPPORTED = (nn.Linear, nn.Conv2d)
# Harmless UserWarning of the sample-wise path: captum sets requires_grad on a
# clone of the input batch so that its backward hooks fire on the first layer.
_INPUT_GRAD_WARNING = r"Input Tensor \d+ did not already require gradients"


# --------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------


def per_row_loss(output: torch.Tensor, y: torch.Tensor, loss: LossKind) -> torch.Tensor:
    """Per-row loss, shape ``(n,)``.

    Parameters
    ----------
    output : torch.Tensor of shape (n, n_classes)
        Module output: logits for ``loss="cross_entropy"``, probabilities for
        ``loss="nll_of_probs"``.
    y : torch.Tensor of shape (n,)
        Integer class labels.
    loss : {"cross_entropy", "nll_of_probs"}
        Loss kind; see the module docstring.

    Returns
    -------
    torch.Tensor of shape (n,)
        ``l_i`` for every row.
    """
    if loss == "cross_entropy":
        return F.cross_entropy(output, y, reduction="none")
    if loss == "nll_of_probs":
        eps = torch.finfo(output.dtype).eps
        return F.nll_loss(torch.log(output + eps), y, reduction="none")
    raise ValueError(f"unknown loss {loss!r}; use 'cross_entropy' or 'nll_of_probs'")


class _RowLoss(nn.Module):
    """Loss module with a ``reduction`` attribute, as captum inspects it.

    Parameters
    ----------
    loss : {"cross_entropy", "nll_of_probs"}
        Per-row loss kind, see :func:`per_row_loss`.
    reduction : {"none", "sum", "mean"}
        Reduction over the rows of a batch. captum reads this attribute: it
        must be ``"none"`` when ``sample_wise_grads_per_batch=False`` and
        ``"sum"`` or ``"mean"`` when it is True.
    """

    def __init__(self, loss: LossKind, reduction: str) -> None:
        super().__init__()
        if loss not in ("cross_entropy", "nll_of_probs"):
            raise ValueError(f"unknown loss {loss!r}")
        self.loss = loss
        self.reduction = reduction

    def forward(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rows = per_row_loss(output, y, self.loss)
        if self.reduction == "none":
            return rows
        if self.reduction == "sum":
            return rows.sum()
        if self.reduction == "mean":
            return rows.mean()
        raise ValueError(f"unknown reduction {self.reduction!r}")


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _prepare_module(module: nn.Module) -> nn.Module:
    """Deep copy of ``module`` in eval mode (the original is left untouched)."""
    model = copy.deepcopy(module)
    model.eval()
    return model


def _dtype_of(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def _as_xy(
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features as ``dtype`` tensor, labels as a 1-D ``torch.long`` tensor."""
    X_t = torch.as_tensor(X).to(dtype)
    y_t = torch.as_tensor(y).to(torch.long).reshape(-1)
    if X_t.shape[0] != y_t.shape[0]:
        raise ValueError(f"X has {X_t.shape[0]} rows but y has {y_t.shape[0]}")
    return X_t, y_t


def _load_checkpoint(model: nn.Module, checkpoint: Checkpoint) -> float:
    """Copy ``checkpoint[0]`` into the parameters of ``model``; return its lr.

    This is the ``checkpoints_load_func`` handed to captum, and also what the
    brute-force functions use. Names must match ``model.named_parameters()``
    exactly and dtypes must match (no silent down-casting of a float64
    checkpoint into a float32 model).
    """
    params, lr = checkpoint
    named = dict(model.named_parameters())
    if set(params) != set(named):
        raise KeyError(
            "checkpoint parameter names do not match module.named_parameters(): "
            f"missing {sorted(set(named) - set(params))}, "
            f"unexpected {sorted(set(params) - set(named))}"
        )
    with torch.no_grad():
        for name, param in named.items():
            value = torch.as_tensor(params[name])
            if value.dtype != param.dtype or value.shape != param.shape:
                raise ValueError(
                    f"checkpoint tensor {name!r} has dtype/shape "
                    f"{value.dtype}/{tuple(value.shape)}, the module has "
                    f"{param.dtype}/{tuple(param.shape)}"
                )
            param.copy_(value)
    return float(lr)


def _check_checkpoints(checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
    checkpoints = list(checkpoints)
    if not checkpoints:
        raise ValueError("need at least one (params, lr) checkpoint")
    return checkpoints


def _check_sample_wise_supported(model: nn.Module) -> None:
    """Raise if captum's hook-based per-sample gradients would skip parameters.

    captum only computes ``param.sample_grad`` for ``nn.Linear`` and
    ``nn.Conv2d`` and then keeps only parameters having that attribute, so any
    other parameter would silently be missing from the gradient.
    """
    covered = {
        id(p)
        for m in model.modules()
        if isinstance(m, _SAMPLE_WISE_SUPPORTED)
        for p in m.parameters(recurse=False)
    }
    missing = [n for n, p in model.named_parameters() if id(p) not in covered]
    if missing:
        raise ValueError(
            "sample_wise_grads_per_batch=True supports only parameters of "
            f"nn.Linear/nn.Conv2d; these would be silently dropped: {missing}. "
            "Use sample_wise_grads_per_batch=False."
        )


def _make_tracin(
    module: nn.Module,
    checkpoints: Sequence[Checkpoint],
    X_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    loss: LossKind,
    batch_size: int,
    sample_wise_grads_per_batch: bool,
    reduction: Literal["sum", "mean"],
):
    """Build a ``captum.influence.TracInCP`` over a private copy of ``module``."""
    from captum.influence import TracInCP

    checkpoints = _check_checkpoints(checkpoints)
    model = _prepare_module(module)
    if sample_wise_grads_per_batch:
        _check_sample_wise_supported(model)
        if reduction not in ("sum", "mean"):
            raise ValueError("reduction must be 'sum' or 'mean'")
        loss_fn = _RowLoss(loss, reduction)
    else:
        loss_fn = _RowLoss(loss, "none")
    X_t, y_t = _as_xy(X_train, y_train, _dtype_of(model))
    tracin = TracInCP(
        model,
        TensorDataset(X_t, y_t),  # captum wraps it: DataLoader(..., shuffle=False)
        checkpoints,  # list of (params, lr) pairs, passed to the load func as is
        checkpoints_load_func=_load_checkpoint,
        loss_fn=loss_fn,
        test_loss_fn=loss_fn,
        batch_size=batch_size,
        sample_wise_grads_per_batch=sample_wise_grads_per_batch,
    )
    return tracin, model


# --------------------------------------------------------------------------
# captum references
# --------------------------------------------------------------------------


def captum_tracin_aggregate(
    module: nn.Module,
    checkpoints: Sequence[Checkpoint],
    X_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    X_val: np.ndarray | torch.Tensor,
    y_val: np.ndarray | torch.Tensor,
    *,
    loss: LossKind = "cross_entropy",
    batch_size: int = 1024,
    sample_wise_grads_per_batch: bool = True,
    reduction: Literal["sum", "mean"] = "sum",
) -> np.ndarray:
    """TracIn scores of training rows against the mean validation loss, by captum.

    Computes, for every training row ``i``,
    ``s_i = sum_t lr_t * < grad L_val(theta_t), grad l_i(theta_t) >`` with
    ``L_val`` the mean per-row loss over the validation rows (see the module
    docstring).

    It calls ``TracInCP(...).influence(val_loader, aggregate=True)``, which
    returns ``sum_j sum_t lr_t < grad l_j(theta_t), grad l_i(theta_t) >``
    summed over validation rows ``j``, and divides that by ``n_val``. By
    linearity of the gradient this equals the score against
    ``grad L_val = (1 / n_val) sum_j grad l_j``.

    Parameters
    ----------
    module : torch.nn.Module
        Model; deep-copied and put in eval mode, never modified.
    checkpoints : sequence of (dict of str to torch.Tensor, float)
        ``(params, lr)`` pairs; ``params`` maps every name of
        ``module.named_parameters()`` to a tensor of the same dtype/shape.
    X_train : array-like of shape (n_train, ...)
        Training features; converted to the module's parameter dtype.
    y_train : array-like of shape (n_train,)
        Training class labels (integers).
    X_val : array-like of shape (n_val, ...)
        Validation features.
    y_val : array-like of shape (n_val,)
        Validation class labels (integers).
    loss : {"cross_entropy", "nll_of_probs"}, default="cross_entropy"
        Per-row loss; ``"nll_of_probs"`` expects the module to output
        probabilities (skorch ``NeuralNetClassifier`` with ``NLLLoss``).
    batch_size : int, default=1024
        Batch size for both the training and the validation ``DataLoader``.
        Does not change the result (up to rounding).
    sample_wise_grads_per_batch : bool, default=True
        If True, captum's hook-based per-sample gradients (``nn.Linear`` /
        ``nn.Conv2d`` parameters only; fast). If False, captum loops over
        rows with one ``autograd.grad`` per row (slow, any layer).
    reduction : {"sum", "mean"}, default="sum"
        Reduction given to captum's loss when
        ``sample_wise_grads_per_batch=True``; captum undoes ``"mean"`` by
        multiplying by the batch size, so both give the same scores. Ignored
        otherwise (captum then requires ``"none"``, which is used).

    Returns
    -------
    numpy.ndarray of shape (n_train,)
        Scores ``s_i`` in the module's dtype.
    """
    tracin, model = _make_tracin(
        module,
        checkpoints,
        X_train,
        y_train,
        loss,
        batch_size,
        sample_wise_grads_per_batch,
        reduction,
    )
    X_v, y_v = _as_xy(X_val, y_val, _dtype_of(model))
    val_loader = DataLoader(TensorDataset(X_v, y_v), batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_INPUT_GRAD_WARNING)
        summed = tracin.influence(val_loader, aggregate=True)  # shape (1, n_train)
    scores = summed.reshape(-1) / X_v.shape[0]
    return scores.detach().cpu().numpy()


def captum_self_influence(
    module: nn.Module,
    checkpoints: Sequence[Checkpoint],
    X_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    *,
    loss: LossKind = "cross_entropy",
    batch_size: int = 1024,
    sample_wise_grads_per_batch: bool = True,
    reduction: Literal["sum", "mean"] = "sum",
) -> np.ndarray:
    """TracIn self-influence of training rows, by captum.

    Computes ``sum_t lr_t * || grad l_i(theta_t) ||^2`` for every training
    row ``i`` with ``TracInCP(...).self_influence()`` (no rescaling: captum
    already returns exactly this).

    Parameters
    ----------
    module : torch.nn.Module
        Model; deep-copied and put in eval mode, never modified.
    checkpoints : sequence of (dict of str to torch.Tensor, float)
        ``(params, lr)`` pairs, as in :func:`captum_tracin_aggregate`.
    X_train : array-like of shape (n_train, ...)
        Training features; converted to the module's parameter dtype.
    y_train : array-like of shape (n_train,)
        Training class labels (integers).
    loss : {"cross_entropy", "nll_of_probs"}, default="cross_entropy"
        Per-row loss, see :func:`per_row_loss`.
    batch_size : int, default=1024
        Batch size of the training ``DataLoader``.
    sample_wise_grads_per_batch : bool, default=True
        See :func:`captum_tracin_aggregate`.
    reduction : {"sum", "mean"}, default="sum"
        See :func:`captum_tracin_aggregate`.

    Returns
    -------
    numpy.ndarray of shape (n_train,)
        Self-influence scores in the module's dtype.
    """
    tracin, _ = _make_tracin(
        module,
        checkpoints,
        X_train,
        y_train,
        loss,
        batch_size,
        sample_wise_grads_per_batch,
        reduction,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_INPUT_GRAD_WARNING)
        scores = tracin.self_influence(None, outer_loop_by_checkpoints=True)
    return scores.reshape(-1).detach().cpu().numpy()


# --------------------------------------------------------------------------
# Brute-force references (no captum)
# --------------------------------------------------------------------------


def _flat_grad(model: nn.Module, scalar_loss: torch.Tensor) -> torch.Tensor:
    """Gradient of a scalar w.r.t. all parameters, flattened into one vector."""
    grads = torch.autograd.grad(scalar_loss, list(model.parameters()))
    return torch.cat([g.reshape(-1) for g in grads])


def _row_grads(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: LossKind
) -> torch.Tensor:
    """Matrix ``(n, n_params)`` whose row ``i`` is ``grad l_i``, one row at a time."""
    rows = []
    for i in range(X.shape[0]):
        loss_i = per_row_loss(model(X[i : i + 1]), y[i : i + 1], loss)[0]
        rows.append(_flat_grad(model, loss_i))
    return torch.stack(rows)


def brute_force_tracin(
    module: nn.Module,
    checkpoints: Sequence[Checkpoint],
    X_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    X_val: np.ndarray | torch.Tensor,
    y_val: np.ndarray | torch.Tensor,
    *,
    loss: LossKind = "cross_entropy",
) -> np.ndarray:
    """TracIn scores against the mean validation loss, by plain autograd loops.

    For each checkpoint ``t``: load ``theta_t``; compute ``grad L_val`` as
    the gradient of the mean per-row validation loss (one backward pass);
    compute ``grad l_i`` for each training row with its own backward pass;
    add ``lr_t * <grad L_val, grad l_i>``.

    Parameters
    ----------
    module : torch.nn.Module
        Model; deep-copied and put in eval mode, never modified.
    checkpoints : sequence of (dict of str to torch.Tensor, float)
        ``(params, lr)`` pairs, as in :func:`captum_tracin_aggregate`.
    X_train : array-like of shape (n_train, ...)
        Training features.
    y_train : array-like of shape (n_train,)
        Training class labels.
    X_val : array-like of shape (n_val, ...)
        Validation features.
    y_val : array-like of shape (n_val,)
        Validation class labels.
    loss : {"cross_entropy", "nll_of_probs"}, default="cross_entropy"
        Per-row loss, see :func:`per_row_loss`.

    Returns
    -------
    numpy.ndarray of shape (n_train,)
        Scores ``s_i`` in the module's dtype.
    """
    model = _prepare_module(module)
    X_tr, y_tr = _as_xy(X_train, y_train, _dtype_of(model))
    X_v, y_v = _as_xy(X_val, y_val, _dtype_of(model))
    scores = torch.zeros(X_tr.shape[0], dtype=_dtype_of(model))
    for checkpoint in _check_checkpoints(checkpoints):
        lr = _load_checkpoint(model, checkpoint)
        val_grad = _flat_grad(model, per_row_loss(model(X_v), y_v, loss).mean())
        train_grads = _row_grads(model, X_tr, y_tr, loss)
        scores += lr * (train_grads @ val_grad)
    return scores.detach().cpu().numpy()


def brute_force_self_influence(
    module: nn.Module,
    checkpoints: Sequence[Checkpoint],
    X_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    *,
    loss: LossKind = "cross_entropy",
) -> np.ndarray:
    """TracIn self-influence by plain autograd loops.

    For each checkpoint ``t``: load ``theta_t``; compute ``grad l_i`` for each
    training row with its own backward pass; add ``lr_t * ||grad l_i||^2``.

    Parameters
    ----------
    module : torch.nn.Module
        Model; deep-copied and put in eval mode, never modified.
    checkpoints : sequence of (dict of str to torch.Tensor, float)
        ``(params, lr)`` pairs, as in :func:`captum_tracin_aggregate`.
    X_train : array-like of shape (n_train, ...)
        Training features.
    y_train : array-like of shape (n_train,)
        Training class labels.
    loss : {"cross_entropy", "nll_of_probs"}, default="cross_entropy"
        Per-row loss, see :func:`per_row_loss`.

    Returns
    -------
    numpy.ndarray of shape (n_train,)
        Self-influence scores in the module's dtype.
    """
    model = _prepare_module(module)
    X_tr, y_tr = _as_xy(X_train, y_train, _dtype_of(model))
    scores = torch.zeros(X_tr.shape[0], dtype=_dtype_of(model))
    for checkpoint in _check_checkpoints(checkpoints):
        lr = _load_checkpoint(model, checkpoint)
        train_grads = _row_grads(model, X_tr, y_tr, loss)
        scores += lr * (train_grads**2).sum(dim=1)
    return scores.detach().cpu().numpy()
