"""captum's ``TracInCP``: the reference of bench_speed.py and bench_counterfactual_peers.py.

For checkpoints ``(params_t, lr_t)`` of a module that outputs logits,
:func:`tracin_scores` is ``sum_t lr_t <grad L_val(theta_t), grad l_i(theta_t)>``
(``L_val`` the mean validation cross-entropy: captum's aggregate sums over
the validation rows) and :func:`self_influence` ``sum_t lr_t ||grad
l_i(theta_t)||^2``. captum runs with ``sample_wise_grads_per_batch=True``
(hook-based per-sample gradients of ``nn.Linear`` and ``nn.Conv2d``
parameters) on a deep copy of the module in eval mode.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

# captum sets requires_grad on a clone of each input batch: harmless
_INPUT_GRAD_WARNING = r"Input Tensor \d+ did not already require gradients"


class SummedCrossEntropy(nn.Module):
    """Cross-entropy summed over a batch; captum reads ``reduction``."""

    reduction = "sum"

    def forward(self, logits, y):
        return F.cross_entropy(logits, y, reduction="sum")


def load_checkpoint(model: nn.Module, checkpoint) -> float:
    """captum's ``checkpoints_load_func``: copy the parameters, return the lr."""
    params, lr = checkpoint
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])
    return float(lr)


def _tracin(module, checkpoints, X, y, batch_size: int):
    from captum.influence import TracInCP

    loss = SummedCrossEntropy()  # the (params, lr) checkpoints go to load_checkpoint as is
    return TracInCP(copy.deepcopy(module).eval(), TensorDataset(X, y), list(checkpoints),
                    checkpoints_load_func=load_checkpoint, loss_fn=loss, test_loss_fn=loss,
                    batch_size=batch_size, sample_wise_grads_per_batch=True)  # fmt: skip


def tracin_scores(module, checkpoints, X, y, X_val, y_val, *, batch_size: int):
    """TracIn of the rows ``(X, y)`` against the mean validation loss (numpy)."""
    tracin = _tracin(module, checkpoints, X, y, batch_size)
    val = DataLoader(TensorDataset(X_val, y_val), batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_INPUT_GRAD_WARNING)
        summed = tracin.influence(val, aggregate=True)  # shape (1, n)
    return (summed.reshape(-1) / len(X_val)).detach().cpu().numpy()


def self_influence(module, checkpoints, X, y, *, batch_size: int):
    """TracIn self-influence of the rows ``(X, y)`` (numpy)."""
    tracin = _tracin(module, checkpoints, X, y, batch_size)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_INPUT_GRAD_WARNING)
        scores = tracin.self_influence(None, outer_loop_by_checkpoints=True)
    return scores.reshape(-1).detach().cpu().numpy()
