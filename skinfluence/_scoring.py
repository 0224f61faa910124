"""What every scoring path does before it touches a training row.

The leaf shared by the in-memory path (``_compute``), the Dask path
(``skinfluence.dask``) and the signals (``signals._compute``): the defaults
of :func:`skinfluence.compute_influence`'s scoring options, the checks of
its arguments, and :func:`prepare_scoring`. It imports none of them.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np
import torch

from .methods import METHODS, Method
from .models import TorchModel, as_torch_model, check_supported
from .objectives import OBJECTIVES, Objective

#: the defaults of :func:`skinfluence.compute_influence`'s scoring options,
#: the same in memory, on Dask and for ``relabel_influence``
OBJECTIVE = "utility"
METHOD = "ip"
BATCH_SIZE = 2048


def scoring_options(objective, method, sensitive_features_val, batch_size) -> dict:
    """``options`` as the scoring entry points pass them to :func:`prepare_scoring`.

    The in-memory entry points (``_compute``) and the Dask ones
    (``skinfluence.dask``) build them here.
    """
    return {
        "objective": objective,
        "method": method,
        "sensitive_features_val": sensitive_features_val,
        "batch_size": batch_size,
    }


def resolve_objective(objective) -> Objective:
    """An :class:`Objective` from a key or an instance (cloned)."""
    return OBJECTIVES.resolve(objective)


def resolve_method(method) -> Method:
    """A :class:`Method` from a key or an instance (cloned)."""
    return METHODS.resolve(method)


def check_batch_size(batch_size) -> int:
    if (
        not isinstance(batch_size, numbers.Integral)
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    return int(batch_size)


def n_rows(a) -> int:
    return a.shape[0] if hasattr(a, "shape") else len(a)


def is_dask(a) -> bool:
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(a)


def _of_a_family(estimator) -> bool:
    """Whether ``estimator`` belongs to a model family (not a bare module)."""
    return not isinstance(estimator, TorchModel | torch.nn.Module)


def prepare_scoring(
    estimator,
    X_val,
    y_val,
    *,
    objective,
    method,
    sensitive_features_val,
    batch_size,
):
    """What every scoring path does before it touches a training row.

    Resolves and checks the strategies and ``batch_size``, checks the
    validation rows, converts the model and binds the objective to the
    validation rows. Shared by :func:`compute_influence` and its Dask path.

    Returns
    -------
    model : TorchModel
    method : Method
    bound : BoundObjective or None
        None for a method that measures no objective.
    batch_size : int
    """
    method_ = resolve_method(method)
    objective_ = resolve_objective(objective) if method_.needs_objective else None
    method_.validate()
    if objective_ is not None:
        objective_.validate()
    batch_size = check_batch_size(batch_size)
    if method_.needs_objective and (X_val is None or y_val is None):
        raise ValueError(
            f"method={method_._name()!r} measures influence on an objective of "
            "the validation rows: pass X_val and y_val."
        )
    if method_.needs_validation_rows and (X_val is None or y_val is None):
        raise ValueError(
            f"method={method_._name()!r} reads validation rows: pass X_val and y_val."
        )
    if X_val is not None and y_val is not None and n_rows(X_val) != n_rows(y_val):
        raise ValueError(
            f"X_val and y_val have different lengths ({n_rows(X_val)} and {n_rows(y_val)})."
        )
    if objective_ is not None and objective_.requires_sensitive_features:
        if sensitive_features_val is None:
            raise ValueError(
                f"The {type(objective_).__name__.lower()} objective needs "
                "sensitive_features_val for the validation rows."
            )
    if _of_a_family(estimator):
        info = check_supported(estimator)
        if method_.inverts_curvature:
            info.adapter.check_curvature(info.final)
        if objective_ is not None:
            info.adapter.check_objective(info.final, objective_)
    model = as_torch_model(estimator)
    method_.check_checkpoints(model)
    bound = None
    if objective_ is not None:
        bound = objective_.bind(
            model, X_val, y_val, sensitive_features=sensitive_features_val
        )
    return model, method_, bound, batch_size


def class_indices(model: TorchModel, classes) -> tuple[np.ndarray, int]:
    """The model's index of each label of ``classes``, and its number of classes.

    A model that does not know its classes takes labels as indices: it has
    as many as the largest of ``classes``, plus one.
    """
    idx = model.prepare_y(np.asarray(classes)).numpy()
    n_classes = model.n_classes
    return idx, int(idx.max()) + 1 if n_classes is None else n_classes
