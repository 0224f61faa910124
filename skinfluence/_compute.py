"""``compute_influence``: resolve the strategies and run them on a fitted model."""

from __future__ import annotations

import numpy as np
import torch

from ._kernels import all_finite
from ._progress import verbosity
from ._scoring import (
    BATCH_SIZE,
    METHOD,
    OBJECTIVE,
    class_indices,
    is_dask,
    n_rows,
    prepare_scoring,
    resolve_method,
    resolve_objective,  # noqa: F401 - _cleaning and _influence_inputs import it here
    scoring_options,
)
from .methods import Method
from .objectives._validation import prepare_validation


def compute_influence(
    estimator,
    X,
    y,
    X_val=None,
    y_val=None,
    *,
    objective=OBJECTIVE,
    method=METHOD,
    sensitive_features_val=None,
    batch_size: int = BATCH_SIZE,
    random_state=None,
    verbose: int = 0,
) -> np.ndarray:
    """Score every row of ``(X, y)`` by its influence on a validation objective.

    Parameters
    ----------
    estimator : fitted estimator, Pipeline, or TorchModel
        The model fitted on ``(X, y)``: see
        :func:`skinfluence.models.as_torch_model` for the supported families.
        It is not modified.
    X : array-like or DataFrame of shape (n_samples, n_features)
        The training rows to score (as passed to the estimator's ``fit``).
        A row-chunked dask Array or DataFrame is scored block by block, on
        the workers, and the scores are lazy: see
        :func:`skinfluence.dask.compute_influence`.
    y : array-like of shape (n_samples,)
        Their labels.
    X_val, y_val : array-like, default=None
        The validation rows the objective is measured on (not needed by
        "self_influence", "loss" and "random").
    objective : {"utility", "fairness", "robustness"} or Objective, \
            default="utility"
        The scalar J to minimise on the validation rows.
    method : {"ip", "ip_ensemble", "tracin", "influence_function", \
            "self_influence", "loss", "random"} or Method, default="ip"
        How rows are scored.
    sensitive_features_val : array-like of shape (n_val,) or (n_val, k), \
            default=None
        Group labels of the validation rows (for the fairness objective).
    batch_size : int, default=2048
        Rows per chunk; memory grows with ``batch_size`` times the number of
        parameters, never with the number of rows.
    random_state : int, RandomState instance or None, default=None
        Seed for randomised methods ("ip_ensemble", "lissa", "random").
    verbose : int, default=0
        Above 0, progress bars (tqdm) over row chunks, ensemble members and
        checkpoints.

    Returns
    -------
    scores : ndarray of shape (n_samples,), float64
        Higher means more beneficial to the objective: the lowest are the
        rows to prune. For dask input, a lazy dask Array (or Series) aligned
        with the rows.

    See Also
    --------
    skinfluence.models.as_torch_model : the model adapters.

    Notes
    -----
    With ``theta`` the fitted parameters, ``l_i`` the loss of row ``i`` and
    ``J`` the objective, "ip" returns ``<grad J, grad l_i>``: a gradient step
    on row ``i`` changes ``J`` by ``-eta <grad J, grad l_i>``, so a positive
    score is a row that helps.

    Examples
    --------
    >>> from skinfluence import compute_influence
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = make_classification(n_samples=120, random_state=0)
    >>> clf = LogisticRegression().fit(X[:100], y[:100])
    >>> scores = compute_influence(clf, X[:100], y[:100], X[100:], y[100:])
    >>> scores.shape
    (100,)
    """
    options = scoring_options(objective, method, sensitive_features_val, batch_size)
    if is_dask(X) or is_dask(y):
        from .dask import compute_influence as on_dask

        return on_dask(
            estimator, X, y, X_val, y_val, random_state=random_state, **options
        )
    return score_rows(
        estimator, X, y, X_val, y_val, options, random_state=random_state,
        verbose=verbose,
    )[0]  # fmt: skip


def score_rows(
    estimator,
    X,
    y,
    X_val,
    y_val,
    options: dict,
    *,
    random_state=None,
    verbose: int = 0,
    classes=None,
) -> tuple[np.ndarray, Method]:
    """In-memory scoring: the scores, and the method object that computed them.

    The body of :func:`compute_influence` (``classes=None``) and of
    :func:`relabel_influence` (the scores under each label of ``classes``)
    for in-memory rows; ``options`` holds their ``objective``, ``method``,
    ``sensitive_features_val`` and ``batch_size``. The method returned is
    the clone that scored, with what :meth:`Method.score` fitted on it
    (``InfluenceFunction``'s ``cg_info_``, ``damping_``): the fitted
    ``method_`` of a meta-estimator carries it.
    """
    model, method_, bound, batch_size, Xt, yt, extra = _prepare_rows(
        estimator, X, y, X_val, y_val, options
    )
    kwargs = {"batch_size": batch_size, "random_state": random_state, **extra}
    with verbosity(verbose):
        if classes is None:
            scores = method_.score(model, bound, Xt, yt, **kwargs)
        else:
            idx, n_classes = class_indices(model, classes)
            scores = method_.score_relabel(
                model, bound, Xt, yt, n_classes=n_classes, **kwargs
            )
    scores = torch.as_tensor(scores).detach().cpu().numpy().astype(np.float64)
    return (scores if classes is None else scores[idx]), method_


def _prepare_rows(estimator, X, y, X_val, y_val, options):
    """:func:`prepare_scoring`, then the training rows as the method takes them.

    Returns ``(model, method, bound, batch_size, X, y, extra)``: ``extra``
    holds the ``validation`` rows for a method that reads them.
    """
    if n_rows(X) != n_rows(y):
        raise ValueError(
            f"X and y have different lengths ({n_rows(X)} and {n_rows(y)})."
        )
    model, method_, bound, batch_size = prepare_scoring(
        estimator, X_val, y_val, **options
    )
    Xt = model.prepare_X(X)
    yt = model.prepare_y(y)
    if not all_finite(Xt):
        raise ValueError(
            "X contains NaN or infinity (after the model's preprocessing)."
        )
    extra = {}
    if method_.needs_validation_rows:  # the rows as given, not the objective's
        extra["validation"] = prepare_validation(model, X_val, y_val)
    return model, method_, bound, batch_size, Xt, yt, extra


def relabel_influence(
    estimator,
    X,
    y,
    X_val=None,
    y_val=None,
    *,
    classes,
    objective=OBJECTIVE,
    method=METHOD,
    sensitive_features_val=None,
    batch_size: int = BATCH_SIZE,
    random_state=None,
    verbose: int = 0,
    **dask_options,
):
    """The scores of the rows of ``(X, y)`` as if each row had each label of ``classes``.

    Row ``k`` of the result is, for every training row, the score it would
    have under label ``classes[k]``, with everything the method computes
    from the training labels (the objective's gradient, an inverse
    curvature, kernels, seeds) taken once at the true labels ``y``
    (:meth:`~skinfluence.methods.Method.score_relabel`). Relabelling row
    ``i`` from ``y_i`` to ``c`` changes the objective by about
    ``s[y_i, i] - s[c, i]``. The one entry point of ``action="relabel"``
    (``InfluenceFilter``) and :func:`skinfluence.dask.relabel_effects`.

    Parameters
    ----------
    estimator, X, y, X_val, y_val, objective, method, sensitive_features_val, \
            batch_size, random_state, verbose
        As for :func:`compute_influence`.
    classes : array-like of shape (n_classes,)
        The labels to score, as ``y`` holds them (each one the fitted model
        knows).
    **dask_options
        For dask input: ``hessian_rows`` and ``client``, as for
        :func:`skinfluence.dask.compute_influence`.

    Returns
    -------
    scores : ndarray of shape (n_classes, n_samples), float64
        For dask input, lazy: a dask Array of that shape, or a dask
        DataFrame with one column per class, aligned with the rows.

    Raises
    ------
    ValueError
        When the method defines no relabel scores, before any work.
    """
    options = scoring_options(objective, method, sensitive_features_val, batch_size)
    resolve_method(method).check_relabel()
    if is_dask(X) or is_dask(y):
        from .dask._relabel import relabel_influence as on_dask

        return on_dask(
            estimator,
            X,
            y,
            X_val,
            y_val,
            classes=classes,
            random_state=random_state,
            **options,
            **dask_options,
        )
    if dask_options:
        raise TypeError(
            f"relabel_influence() got unexpected keyword arguments {sorted(dask_options)}."
        )
    return score_rows(
        estimator, X, y, X_val, y_val, options, random_state=random_state,
        verbose=verbose, classes=classes,
    )[0]  # fmt: skip
