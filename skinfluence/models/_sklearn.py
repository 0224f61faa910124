"""Adapters for scikit-learn's logistic models (as an exact ``nn.Linear``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._base import TorchModel, criterion_row_loss


def _linear_module(coef: np.ndarray, intercept: np.ndarray) -> nn.Linear:
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    lin = nn.Linear(coef.shape[1], coef.shape[0], bias=True).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(coef))
        lin.bias.copy_(torch.from_numpy(np.asarray(intercept, dtype=np.float64)))
    return lin


def _build(est, l2, *, family: str) -> TorchModel:
    coef = np.asarray(est.coef_)
    n_classes = len(est.classes_)
    intercept = np.asarray(est.intercept_) if est.fit_intercept else np.zeros(len(coef))
    module = _linear_module(coef, intercept)
    if not est.fit_intercept:
        module.bias.requires_grad_(False)
    if n_classes == 2:
        output, crit = "binary_logit", nn.BCEWithLogitsLoss()
    else:
        output, crit = "logits", nn.CrossEntropyLoss()
    return TorchModel(
        module,
        criterion_row_loss(crit, output),
        output=output,
        classes=est.classes_,
        l2=l2,
        family=family,
    )


def from_logistic_regression(est) -> TorchModel:
    """Adapter for a fitted ``LogisticRegression`` (binary or multinomial).

    scikit-learn minimises ``mean(loss) + (1 - l1_ratio) / (2 C n) ||w||^2``
    (plus the L1 part, whose Hessian is zero almost everywhere); the intercept
    is not penalised, except by liblinear, which penalises
    ``(intercept / intercept_scaling)^2`` as well.
    """
    if getattr(est, "class_weight", None) is not None:
        raise ValueError(
            "LogisticRegression with class_weight is not supported: its "
            "training loss is weighted per class."
        )
    n_classes = len(est.classes_)
    if n_classes > 2 and np.asarray(est.coef_).shape[0] != n_classes:
        raise ValueError("Only multinomial multiclass LogisticRegression is supported.")
    if n_classes > 2 and getattr(est, "multi_class", "auto") == "ovr":
        raise ValueError("One-vs-rest LogisticRegression is not supported.")
    penalty = getattr(est, "penalty", "deprecated")
    l1_ratio = getattr(est, "l1_ratio", 0.0) or 0.0
    if penalty in ("l1",):
        l1_ratio = 1.0
    elif penalty == "l2":
        l1_ratio = 0.0
    C = float(est.C)
    no_penalty = penalty is None or penalty == "none" or not np.isfinite(C)
    liblinear = est.solver == "liblinear"
    scaling = float(getattr(est, "intercept_scaling", 1.0))

    def l2(n_rows: int) -> dict[str, float]:
        if no_penalty:
            return {}
        lam = (1.0 - l1_ratio) / (C * n_rows)
        out = {"weight": lam}
        if liblinear and est.fit_intercept:
            out["bias"] = lam / scaling**2
        return out

    return _build(est, l2, family="LogisticRegression")


def from_sgd_classifier(est) -> TorchModel:
    """Adapter for a fitted binary ``SGDClassifier(loss="log_loss")``.

    Its objective is ``mean(loss) + alpha * R(w)`` with
    ``R = (1 - l1_ratio) / 2 ||w||^2 + l1_ratio ||w||_1`` for elasticnet.
    """
    if est.loss != "log_loss":
        raise TypeError(
            f"SGDClassifier(loss={est.loss!r}) is not supported: only "
            "loss='log_loss' is a probabilistic model with a smooth loss."
        )
    if len(est.classes_) != 2:
        raise ValueError(
            "Only binary SGDClassifier is supported (multiclass SGD is one-vs-rest)."
        )
    if getattr(est, "class_weight", None) is not None:
        raise ValueError("SGDClassifier with class_weight is not supported.")
    if getattr(est, "average", False):
        raise ValueError("SGDClassifier(average=True) is not supported.")
    ratio = {"l2": 0.0, "l1": 1.0, "elasticnet": est.l1_ratio, None: 1.0}.get(
        est.penalty, 0.0
    )
    lam = float(est.alpha) * (1.0 - ratio)

    def l2(n_rows: int) -> dict[str, float]:
        return {"weight": lam}

    return _build(est, l2, family="SGDClassifier")
