"""Check, before any training, that an estimator will be supported once fitted.

:func:`skinfluence.models.as_torch_model` dispatches on *fitted* estimators.
Meta-estimators that fit a clone first (InfluenceFilter, InfluenceSampler)
must reject an unsupported estimator before spending a training on it:
:func:`check_supported` mirrors the dispatch of ``models/_dispatch.py`` on the
unfitted estimator and its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ._dispatch import SUPPORTED


@dataclass(frozen=True)
class SupportInfo:
    """What :func:`check_supported` learnt about an (unfitted) estimator.

    Parameters
    ----------
    family : {"skorch", "sklearn"}
        The family of the final model.
    final : estimator
        The final model (the last step of a Pipeline, the estimator itself
        otherwise), unfitted.
    in_pipeline : bool
        Whether the model is the last step of a Pipeline (or is wrapped by
        another influence meta-estimator), so that ``X`` reaches it only after
        earlier steps.
    binary_only : bool
        Whether the model supports two classes only.
    binary_net : bool
        Whether the model is a skorch ``NeuralNetBinaryClassifier`` (its
        targets are float 0/1).
    """

    family: str
    final: object
    in_pipeline: bool
    binary_only: bool
    binary_net: bool


def _is_class_or_instance(obj, classes) -> bool:
    if isinstance(obj, type):
        return issubclass(obj, classes)
    return isinstance(obj, classes)


def _check_skorch(net) -> SupportInfo:
    from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier

    crit = net.criterion
    if isinstance(net, NeuralNetBinaryClassifier):
        if not _is_class_or_instance(crit, nn.BCEWithLogitsLoss):
            raise TypeError(
                "NeuralNetBinaryClassifier is supported with BCEWithLogitsLoss "
                f"only, not {getattr(crit, '__name__', type(crit).__name__)}."
            )
        return SupportInfo("skorch", net, False, True, True)
    if isinstance(net, NeuralNetClassifier):
        if not _is_class_or_instance(crit, nn.CrossEntropyLoss | nn.NLLLoss):
            raise TypeError(
                "NeuralNetClassifier is supported with CrossEntropyLoss (on "
                "logits) or NLLLoss (on probabilities), not "
                f"{getattr(crit, '__name__', type(crit).__name__)}."
            )
        return SupportInfo("skorch", net, False, False, False)
    raise TypeError(
        f"{type(net).__name__} is not a skorch classifier; use "
        "NeuralNetClassifier or NeuralNetBinaryClassifier."
    )


def _check_sklearn(est) -> SupportInfo:
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    if isinstance(est, LogisticRegression):
        if est.class_weight is not None:
            raise ValueError(
                "LogisticRegression with class_weight is not supported: its "
                "training loss is weighted per class."
            )
        return SupportInfo("sklearn", est, False, False, False)
    if isinstance(est, SGDClassifier):
        if est.loss != "log_loss":
            raise TypeError(
                f"SGDClassifier(loss={est.loss!r}) is not supported: only "
                "loss='log_loss' is a probabilistic model with a smooth loss."
            )
        if est.class_weight is not None:
            raise ValueError("SGDClassifier with class_weight is not supported.")
        if est.average:
            raise ValueError("SGDClassifier(average=True) is not supported.")
        return SupportInfo("sklearn", est, False, True, False)
    raise TypeError(f"{type(est).__name__} is not supported. Supported: {SUPPORTED}.")


def check_supported(estimator) -> SupportInfo:
    """Raise if ``as_torch_model`` would reject ``estimator`` once fitted.

    Parameters
    ----------
    estimator : estimator
        An unfitted estimator: a skorch ``NeuralNetClassifier`` (criterion
        ``CrossEntropyLoss`` or ``NLLLoss``) or ``NeuralNetBinaryClassifier``
        (``BCEWithLogitsLoss``), a ``LogisticRegression`` without
        ``class_weight``, an ``SGDClassifier(loss="log_loss")`` without
        ``class_weight`` and ``average``, a ``Pipeline`` ending in one of these,
        or an influence meta-estimator wrapping one of these.

    Returns
    -------
    SupportInfo
        The model family and what the caller must know to feed it.

    Raises
    ------
    TypeError
        For an unsupported model family (a tree ensemble, an SVC, a skorch
        regressor, an unsupported criterion or loss).
    ValueError
        For a supported family with an unsupported setting (``class_weight``,
        ``average``).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.svm import SVC
    >>> from skinfluence.models._support import check_supported
    >>> check_supported(LogisticRegression()).family
    'sklearn'
    >>> check_supported(SVC())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: SVC is not supported. ...
    """
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        steps = getattr(estimator, "steps", None)
        if not steps:
            raise TypeError("The Pipeline has no steps.")
        final = steps[-1][1]
        if final is None or (isinstance(final, str) and final == "passthrough"):
            raise TypeError("The Pipeline's last step must be a supported model.")
        info = check_supported(final)
        return SupportInfo(
            info.family, info.final, True, info.binary_only, info.binary_net
        )
    if getattr(type(estimator), "_influence_meta_estimator", False):
        info = check_supported(estimator.estimator)
        return SupportInfo(
            info.family, info.final, True, info.binary_only, info.binary_net
        )
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        NeuralNet = None
    if NeuralNet is not None and isinstance(estimator, NeuralNet):
        return _check_skorch(estimator)
    if isinstance(estimator, nn.Module):
        raise TypeError(
            "A plain torch.nn.Module cannot be trained here; wrap it in a skorch "
            "NeuralNetClassifier."
        )
    return _check_sklearn(estimator)
