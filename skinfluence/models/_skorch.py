"""Adapter for skorch's classifiers."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._base import Checkpoint, TorchModel, criterion_row_loss, output_kind_of


def _weight_decay(net) -> dict[int, float]:
    """id(parameter) -> weight decay that the optimizer adds as an L2 term."""
    opt = getattr(net, "optimizer_", None)
    if opt is None:
        return {}
    decoupled = isinstance(opt, torch.optim.AdamW)
    out = {}
    for group in opt.param_groups:
        wd = float(group.get("weight_decay", 0.0) or 0.0)
        if decoupled or group.get("decoupled_weight_decay", False):
            wd = 0.0  # decoupled decay is not a term of the objective
        for p in group["params"]:
            out[id(p)] = wd
    return out


def _checkpoints(net) -> list[Checkpoint]:
    from ..callbacks import TracInCheckpoints

    for _, cb in getattr(net, "callbacks_", []) or []:
        if isinstance(cb, TracInCheckpoints):
            return list(getattr(cb, "checkpoints_", []))
    return []


def from_skorch(net) -> TorchModel:
    """Adapter for a fitted skorch ``NeuralNetClassifier`` or binary classifier.

    The per-row loss is the net's criterion with ``reduction="none"``; with
    ``NLLLoss`` the module outputs probabilities and their log is taken as
    skorch does (``log(p + eps)``). An optimizer's (coupled) ``weight_decay``
    enters the training objective as ``wd / 2 ||theta||^2``.
    """
    from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier

    if not getattr(net, "initialized_", False):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError("The skorch net is not initialized/fitted.")
    crit = net.criterion_
    if isinstance(net, NeuralNetBinaryClassifier):
        if not isinstance(crit, nn.BCEWithLogitsLoss):
            raise TypeError(
                "NeuralNetBinaryClassifier is supported with BCEWithLogitsLoss only."
            )
        output, classes = "binary_logit", np.array([0, 1])
    elif isinstance(net, NeuralNetClassifier):
        output = output_kind_of(crit, probabilities=True)
        if output not in ("logits", "proba"):
            raise TypeError(
                "NeuralNetClassifier is supported with CrossEntropyLoss (on "
                f"logits) or NLLLoss (on probabilities), not {type(crit).__name__}."
            )
        classes = getattr(net, "classes_", None)
    else:
        raise TypeError(
            f"{type(net).__name__} is not a skorch classifier; use "
            "NeuralNetClassifier or NeuralNetBinaryClassifier."
        )
    decay = _weight_decay(net)
    names = {n: id(p) for n, p in net.module_.named_parameters() if p.requires_grad}

    def l2(n_rows: int) -> dict[str, float]:
        return {n: decay.get(i, 0.0) for n, i in names.items()}

    return TorchModel(
        net.module_,
        criterion_row_loss(crit, output),
        output=output,
        classes=None if classes is None else np.asarray(classes),
        l2=l2,
        checkpoints=_checkpoints(net),
        family=type(net).__name__,
    )
