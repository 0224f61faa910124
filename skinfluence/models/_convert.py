"""``as_torch_model``: the one entry point from a fitted estimator to a TorchModel."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ._adapter import adapter_for
from ._base import Checkpoint, TorchModel, criterion_row_loss, output_kind_of


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
        A fitted estimator of a registered family (see
        :func:`skinfluence.models.adapter_for`): a skorch
        ``NeuralNetClassifier`` or ``NeuralNetBinaryClassifier``,
        ``LogisticRegression``, binary ``SGDClassifier(loss="log_loss")``, a
        ``Pipeline`` ending in one of them (earlier steps only transform X, and
        influence is computed in the model's input space), a fitted
        ``InfluenceFilter`` (its refitted model), or a plain
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
    if isinstance(estimator, nn.Module) and loss is not None:
        return _from_module(estimator, loss, checkpoints, weight_decay, classes)
    if loss is not None or checkpoints or weight_decay or classes is not None:
        raise TypeError(
            "loss, checkpoints, weight_decay and classes are for plain "
            "torch.nn.Module models only."
        )
    return adapter_for(estimator).to_torch(estimator)


def _from_module(module, loss, checkpoints, weight_decay, classes) -> TorchModel:
    cks = [
        ck if isinstance(ck, Checkpoint) else Checkpoint(dict(ck[0]), float(ck[1]))
        for ck in checkpoints
    ]
    output = output_kind_of(loss)
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    return TorchModel(
        module,
        criterion_row_loss(loss, output),
        output=output,
        classes=classes,
        l2=lambda n: dict.fromkeys(names, float(weight_decay)),
        checkpoints=cks,
        family=type(module).__name__,
    )
