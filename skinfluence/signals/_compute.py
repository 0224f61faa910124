"""``compute_signals``: fit (if needed) with checkpoints, then score every row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._kernels import all_finite
from .._scoring import check_batch_size, n_rows
from ..models import as_torch_model, is_fitted, with_checkpoints
from ..objectives._validation import prepare_validation
from ._signals import SIGNAL_METHODS, SignalContext, check_signals

DEFAULT_SIGNALS = (
    "self_influence",
    "aai",
    "mi",
    "gd_class",
    "loss",
    "aum",
    "instability",
)


def compute_signals(
    estimator,
    X,
    y,
    X_val=None,
    y_val=None,
    signals=DEFAULT_SIGNALS,
    *,
    batch_size: int = 512,
    random_state=None,
    projection_dim: int | None = None,
    fit_params: dict | None = None,
) -> pd.DataFrame:
    """Score every training row by data-debugging signals (larger = more suspicious).

    Parameters
    ----------
    estimator : estimator, Pipeline, TorchModel or torch.nn.Module
        A supported classifier (see :func:`skinfluence.models.as_torch_model`).
        An *unfitted* one is cloned and fitted on ``(X, y)``; a skorch net
        (alone, or wrapped in a Pipeline) then records TracIn checkpoints
        (see :func:`skinfluence.models.with_checkpoints`). A *fitted* one is
        used as it is, with its recorded checkpoints if it has any, else its
        final parameters alone.
    X : array-like or DataFrame of shape (n_samples, n_features)
        The training rows to score.
    y : array-like of shape (n_samples,)
        Their (possibly noisy) labels.
    X_val, y_val : array-like, default=None
        Validation rows, needed by "aai", "mai", "mi", "gd_class" and
        "relative_instability".
    signals : sequence of str, default=("self_influence", "aai", "mi", \
            "gd_class", "loss", "aum", "instability")
        Which signals to compute, among ``skinfluence.signals.SIGNALS``:
        "self_influence", "aai", "mai", "mi", "gd_class", "loss", "aum",
        "instability", "relative_instability". The last two need at least
        two checkpoints.
    batch_size : int, default=512
        Rows per chunk; memory grows with ``batch_size`` (times the number of
        parameters, or the number of validation rows), never with ``n``.
    random_state : int, RandomState instance or None, default=None
        Seed of the projection (with ``projection_dim``) and, through the
        clone, nothing else: seed the estimator itself for a reproducible fit.
    projection_dim : int, default=None
        Estimate the ``|I_ij|`` of "aai" and "mai" from a seeded Gaussian
        sketch of the per-row gradients of this dimension, for large models;
        ``None`` computes them exactly.
    fit_params : dict, default=None
        Passed to ``fit`` when the estimator is fitted here.

    Returns
    -------
    pandas.DataFrame of shape (n_samples, len(signals))
        One float64 column per signal, indexed like ``X`` when it is a
        DataFrame.

    See Also
    --------
    skinfluence.metrics.detection_roc_auc : score a column against a known mask.
    skinfluence.datasets.flip_labels, skinfluence.datasets.inject_anomalies

    Notes
    -----
    With ``I_ij = sum_t eta_t <grad l_i(theta_t), grad l_j(theta_t)>``
    between training row ``i`` and validation row ``j``: self-influence
    ``sum_t eta_t ||grad l_i||^2``, ``aai = (1/m) sum_j |I_ij|``,
    ``mai = sum_j |I_ij|``, ``mi = -sum_j I_ij``,
    ``gd_class = -min_c sum_{j: y_j=c} I_ij``, ``loss = l_i(theta)``,
    ``aum = -mean_t margin_i(theta_t)``, ``instability``, the mean
    absolute change of ``||grad l_i(theta_t)||^2`` between consecutive
    checkpoints, and ``relative_instability = instability / aai``. See the
    "signals" page of the documentation (``docs/signals.rst``) for when to
    use which.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import make_classification
    >>> from skorch import NeuralNetClassifier
    >>> from skinfluence import compute_signals
    >>> X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    >>> X = X.astype("float32")
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(),
    ...                         torch.nn.Linear(8, 2)),
    ...     criterion=torch.nn.CrossEntropyLoss, max_epochs=4, lr=0.1,
    ...     train_split=None, verbose=0)
    >>> df = compute_signals(net, X[:100], y[:100], X[100:], y[100:],
    ...                      signals=["self_influence", "aai", "instability"])
    >>> df.shape, list(df.columns)
    ((100, 3), ['self_influence', 'aai', 'instability'])
    """
    chosen = [SIGNAL_METHODS[name]() for name in check_signals(signals)]
    batch_size = check_batch_size(batch_size)
    if n_rows(X) != n_rows(y):
        raise ValueError(
            f"X and y have different lengths ({n_rows(X)} and {n_rows(y)})."
        )
    wanted = [s.signal for s in chosen if s.needs_validation_rows]
    if wanted and (X_val is None or y_val is None):
        raise ValueError(
            f"The signals {wanted} need validation rows: pass X_val and y_val."
        )
    if not is_fitted(estimator):
        estimator = with_checkpoints(estimator).fit(X, y, **(fit_params or {}))
    model = as_torch_model(estimator)
    Xt, yt = model.prepare_X(X), model.prepare_y(y)
    if not all_finite(Xt):
        raise ValueError(
            "X contains NaN or infinity (after the model's preprocessing)."
        )
    Xv, yv = prepare_validation(model, X_val, y_val) if wanted else (None, None)
    context = SignalContext(
        model,
        Xt,
        yt,
        Xv,
        yv,
        batch_size=batch_size,
        projection_dim=projection_dim,
        random_state=random_state,
    )
    values = {s.signal: context.value(s) for s in chosen}
    index = X.index if isinstance(X, pd.DataFrame) else None
    return pd.DataFrame(
        {k: v.detach().cpu().numpy().astype(np.float64) for k, v in values.items()},
        index=index,
        columns=list(values),
    )
