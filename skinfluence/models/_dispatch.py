"""``as_torch_model``: the one entry point from a fitted estimator to a TorchModel."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import Checkpoint, TorchModel, criterion_row_loss, output_kind_of

SUPPORTED = (
    "skorch NeuralNetClassifier / NeuralNetBinaryClassifier, "
    "LogisticRegression, SGDClassifier(loss='log_loss'), a Pipeline whose last "
    "step is one of these, or a torch.nn.Module with loss=..."
)


def as_torch_model(
    estimator,
    *,
    loss: nn.Module | None = None,
    checkpoints: Sequence[Checkpoint | tuple] = (),
    weight_decay: float = 0.0,
    classes=None,
) -> TorchModel:
    """View a fitted classifier as a function of its parameters.

    Parameters
    ----------
    estimator : estimator, Pipeline, torch.nn.Module or TorchModel
        A fitted skorch ``NeuralNetClassifier`` or ``NeuralNetBinaryClassifier``,
        ``LogisticRegression``, binary ``SGDClassifier(loss="log_loss")``, a
        ``Pipeline`` ending in one of them (earlier steps only transform X, and
        influence is computed in the model's input space), or a plain
        ``torch.nn.Module`` (then ``loss`` is required). A ``TorchModel`` is
        returned as it is.
    loss : torch.nn.Module, default=None
        For a plain module only: its training criterion. ``CrossEntropyLoss``
        (logits), ``NLLLoss`` (log-probabilities) and ``BCEWithLogitsLoss`` (one
        logit) also give class probabilities; any other criterion with a
        ``reduction`` attribute supports the loss-based objectives only.
    checkpoints : sequence of Checkpoint or (params, lr) tuples, default=()
        For a plain module only: recorded training checkpoints, for TracIn.
    weight_decay : float, default=0.0
        For a plain module only: the coefficient of ``wd / 2 ||theta||^2`` in
        its training objective.
    classes : array-like, default=None
        For a plain module only: class labels (``y`` holds indices otherwise).

    Returns
    -------
    TorchModel
        Parameters, a functional forward, the per-row loss, the L2 penalty and
        the checkpoints, on the model's device.

    Raises
    ------
    TypeError
        For an unsupported estimator (a tree ensemble, an SVC, ...).
    sklearn.exceptions.NotFittedError
        For an estimator that is not fitted.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.models import as_torch_model
    >>> X, y = make_classification(n_samples=50, n_features=4, random_state=0)
    >>> model = as_torch_model(LogisticRegression().fit(X, y))
    >>> sorted(model.params)
    ['bias', 'weight']
    """
    if isinstance(estimator, TorchModel):
        return estimator
    if isinstance(estimator, nn.Module):
        if loss is None:
            raise TypeError(
                "A plain torch.nn.Module needs its training criterion: "
                "as_torch_model(module, loss=torch.nn.CrossEntropyLoss())."
            )
        cks = [
            ck if isinstance(ck, Checkpoint) else Checkpoint(dict(ck[0]), float(ck[1]))
            for ck in checkpoints
        ]
        output = output_kind_of(loss)
        names = [n for n, p in estimator.named_parameters() if p.requires_grad]
        return TorchModel(
            estimator,
            criterion_row_loss(loss, output),
            output=output,
            classes=classes,
            l2=lambda n: dict.fromkeys(names, float(weight_decay)),
            checkpoints=cks,
            family=type(estimator).__name__,
        )
    if loss is not None or checkpoints or weight_decay or classes is not None:
        raise TypeError(
            "loss, checkpoints, weight_decay and classes are for plain "
            "torch.nn.Module models only."
        )
    return _from_estimator(estimator)


def _from_estimator(estimator) -> TorchModel:
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        final = estimator.steps[-1][1]
        model = _from_estimator(final)
        if len(estimator.steps) > 1:
            head = estimator[:-1]
            check_is_fitted(head)
            model.transform = head.transform
            model.family = f"Pipeline({model.family})"
        return model
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        NeuralNet = ()
    if NeuralNet and isinstance(estimator, NeuralNet):
        from ._skorch import from_skorch

        return from_skorch(estimator)
    if isinstance(estimator, LogisticRegression | SGDClassifier):
        try:
            check_is_fitted(estimator)
        except NotFittedError:
            raise
        from ._sklearn import from_logistic_regression, from_sgd_classifier

        if isinstance(estimator, LogisticRegression):
            return from_logistic_regression(estimator)
        return from_sgd_classifier(estimator)
    # a fitted InfluenceFilter-like meta-estimator exposes its refitted model
    inner = getattr(estimator, "estimator_", None)
    if inner is not None and hasattr(estimator, "influence_"):
        return _from_estimator(inner)
    raise TypeError(
        f"{type(estimator).__name__} is not supported. Supported: {SUPPORTED}."
    )
