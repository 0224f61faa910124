"""The scikit-learn families: LogisticRegression and SGDClassifier(loss="log_loss").

Both become an exact ``nn.Linear`` with their own L2 penalty.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import (
    LogisticRegression,
    LogisticRegressionCV,
    SGDClassifier,
)
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._adapter import ModelAdapter, register_adapter
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
        n_features_in=getattr(est, "n_features_in_", None),
        linear_in_params=True,
    )


def _l1_ratio(est) -> float:
    """The L1 share of a LogisticRegression's penalty."""
    penalty = getattr(est, "penalty", "deprecated")
    if penalty == "l1":
        return 1.0
    if penalty == "l2":
        return 0.0
    return float(getattr(est, "l1_ratio", 0.0) or 0.0)


def _sgd_l1_ratio(est) -> float:
    """The L1 share of an SGDClassifier's penalty (None: no penalty at all)."""
    return {"l2": 0.0, "l1": 1.0, "elasticnet": est.l1_ratio, None: 1.0}.get(
        est.penalty, 0.0
    )


def _refuse_l1(est, l1_ratio: float) -> None:
    if l1_ratio > 0 and not (
        isinstance(est, SGDClassifier) and est.penalty is None
    ):
        raise ValueError(
            f"{type(est).__name__}'s penalty has an L1 part (l1_ratio="
            f"{l1_ratio:g}), whose Hessian is undefined at zero weights, so "
            "influence_function cannot invert the curvature of its training "
            "objective. Use an L2 penalty, or method='ip'."
        )


class LogisticRegressionAdapter(ModelAdapter):
    """``LogisticRegression``, binary or multinomial, without ``class_weight``.

    scikit-learn minimises ``mean(loss) + (1 - l1_ratio) / (2 C n) ||w||^2``
    (plus the L1 part, whose Hessian is zero almost everywhere); the intercept
    is not penalised, except by liblinear, which penalises
    ``(intercept / intercept_scaling)^2`` as well. liblinear fits two classes
    only (scikit-learn >= 1.8 refuses more), so every multiclass model is
    multinomial (softmax).
    """

    description = "LogisticRegression"

    def handles(self, estimator) -> bool:
        # LogisticRegressionCV subclasses it, but its C is chosen by CV
        return isinstance(estimator, LogisticRegression) and not isinstance(
            estimator, LogisticRegressionCV
        )

    def check(self, est) -> None:
        if est.class_weight is not None:
            raise ValueError(
                "LogisticRegression with class_weight is not supported: its "
                "training loss is weighted per class."
            )

    def check_curvature(self, est) -> None:
        _refuse_l1(est, _l1_ratio(est))

    def check_classes(self, est, n_classes: int) -> None:
        if n_classes > 2 and est.solver == "liblinear":
            raise ValueError(
                f"LogisticRegression(solver='liblinear') cannot fit {n_classes} "
                "classes (it is one-vs-rest only); use a multinomial solver such "
                "as solver='lbfgs'."
            )

    def to_torch(self, est) -> TorchModel:
        check_is_fitted(est)
        self.check(est)
        n_classes = len(est.classes_)
        if n_classes > 2 and np.asarray(est.coef_).shape[0] != n_classes:
            raise ValueError(
                "Only multinomial multiclass LogisticRegression is supported."
            )
        penalty = getattr(est, "penalty", "deprecated")
        l1_ratio = _l1_ratio(est)
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


class SGDClassifierAdapter(ModelAdapter):
    """Binary ``SGDClassifier(loss="log_loss")``, without ``class_weight`` or
    ``average``.

    Its objective is ``mean(loss) + alpha * R(w)`` with
    ``R = (1 - l1_ratio) / 2 ||w||^2 + l1_ratio ||w||_1`` for elasticnet.
    Multiclass SGD is one-vs-rest, so it is refused.
    """

    description = "SGDClassifier(loss='log_loss')"

    def handles(self, estimator) -> bool:
        return isinstance(estimator, SGDClassifier)

    def check(self, est) -> None:
        if est.loss != "log_loss":
            raise TypeError(
                f"SGDClassifier(loss={est.loss!r}) is not supported: only "
                "loss='log_loss' is a probabilistic model with a smooth loss."
            )
        if est.class_weight is not None:
            raise ValueError("SGDClassifier with class_weight is not supported.")
        if est.average:
            raise ValueError("SGDClassifier(average=True) is not supported.")

    def binary_only(self, est) -> bool:
        return True

    def check_curvature(self, est) -> None:
        _refuse_l1(est, _sgd_l1_ratio(est))

    def to_torch(self, est) -> TorchModel:
        check_is_fitted(est)
        self.check(est)
        if len(est.classes_) != 2:
            raise ValueError(
                "Only binary SGDClassifier is supported (multiclass SGD is "
                "one-vs-rest)."
            )
        lam = float(est.alpha) * (1.0 - _sgd_l1_ratio(est))

        def l2(n_rows: int) -> dict[str, float]:
            return {"weight": lam}

        return _build(est, l2, family="SGDClassifier")


register_adapter(LogisticRegressionAdapter())
register_adapter(SGDClassifierAdapter())
