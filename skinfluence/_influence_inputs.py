"""Input validation shared by InfluenceFilter and InfluenceSampler.

Everything here runs before any training: a bad input raises a ValueError or
TypeError that names it, and the user's data and estimator are left as given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils.metadata_routing import process_routing
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    column_or_1d,
    validate_data,
)

from ._compute import resolve_method, resolve_objective
from ._influence_params import scoring_estimator
from ._sklearn_compat import _assert_all_finite, _num_samples, _routing_enabled
from .methods import Method
from .metrics._groups import _as_python as as_python  # a numpy scalar as Python's
from .metrics._groups import (
    check_pos_label,
    check_sensitive_features,
    encode_groups,
)
from .models import SupportInfo, check_supported
from .objectives import Fairness, Objective

_NO_Y = "no_validation"  # validate_data's marker for "no y"


@dataclass
class Problem:
    """Validated inputs of one ``fit``."""

    info: SupportInfo
    objective: Objective
    method: Method
    X: object  # as the estimator takes it
    y: np.ndarray  # labels, 1-D
    y_fit: np.ndarray  # as the estimator takes them
    classes: np.ndarray
    codes: np.ndarray  # y as indices into classes
    sensitive: object
    groups: np.ndarray | None  # group code per row
    X_val: object
    y_val: np.ndarray | None
    y_val_fit: np.ndarray | None
    s_val: object
    fit_params: dict
    needs_preflight: bool
    pos_label: object  # the fairness objective's positive label (a label of y), or None
    constraint: Objective | None = None  # must not be harmed (as the model sees it)
    rounds: int = 1  # the rounds of cleaning ("auto" resolved)


_ROWS = 65536  # rows per chunk of the NaN / inf scans (bounded temporaries)


def _row_chunks(arr):
    for start in range(0, len(arr), _ROWS):
        yield arr[start : start + _ROWS]


def _has_missing(X) -> bool:
    """Whether raw X holds a missing value (NaN, None, pd.NA), column by column."""
    import pandas as pd

    if hasattr(X, "columns"):
        return any(bool(X[c].isna().any()) for c in X.columns)
    if sp.issparse(X):
        return X.dtype.kind in "fc" and bool(np.isnan(X.data).any())
    arr = np.asarray(X)
    if arr.dtype.kind in "fc":
        return any(bool(np.isnan(c).any()) for c in _row_chunks(arr))
    if arr.dtype == object:
        return any(bool(pd.isna(c).any()) for c in _row_chunks(arr))
    return False


def _check_no_inf(X) -> None:
    """Infinity in a numeric column of raw X (DataFrame, array, sparse)."""
    if hasattr(X, "columns"):
        cols = (X[c].to_numpy() for c in X.select_dtypes(include="number").columns)
    elif sp.issparse(X):
        cols = [X.data]
    else:
        arr = np.asarray(X)
        if arr.dtype == object:
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                return
        cols = _row_chunks(arr)
    for values in cols:
        if values.dtype.kind in "fc" and np.isinf(values).any():
            raise ValueError("Input X contains infinity.")


def _labels_known(y_val, classes, what: str) -> None:
    unknown = np.setdiff1d(np.unique(y_val), classes)
    if len(unknown):
        raise ValueError(
            f"{what} holds labels that y does not: {unknown[:5].tolist()}; the "
            f"classes of y are {classes.tolist()}."
        )


def validate_X(owner, X, info: SupportInfo, *, reset: bool, y=_NO_Y):
    """Check X (and y, unless omitted) as the estimator will take it.

    ``owner`` is the meta-estimator: ``validate_data`` records
    ``n_features_in_`` (``reset=True``) or checks it on it.
    """
    if info.in_pipeline:
        # the Pipeline validates X itself; keep it as given (a DataFrame
        # with categorical columns stays one), in a row-indexable form
        if sp.issparse(X):
            X = X if X.format in ("csr", "csc") else X.tocsr()
        elif not hasattr(X, "iloc"):
            X = np.asarray(X)
        if getattr(X, "ndim", 2) != 2:
            raise ValueError(
                f"Expected a 2D array for X, got an array of shape {X.shape}. "
                "Reshape your data either using array.reshape(-1, 1) if it "
                "has a single feature or array.reshape(1, -1) if it holds a "
                "single sample."
            )
        out = validate_data(owner, X, y, skip_check_array=True, reset=reset)
        X = out if y is _NO_Y else out[0]
        _check_no_inf(X)
        if y is _NO_Y:
            return X
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in "fc":
            _assert_all_finite(y, input_name="y")
        check_consistent_length(X, y)
        return X, y
    adapter, final = info.adapter, info.final
    params = dict(
        accept_sparse=["csr", "csc"] if adapter.accepts_sparse(final) else False,
        dtype=adapter.input_dtype(final),
        ensure_all_finite=True,
        reset=reset,
    )
    if y is _NO_Y:
        return adapter.fit_input(validate_data(owner, X, **params))
    X, y = validate_data(owner, X, y, ensure_min_samples=2, **params)
    return adapter.fit_input(X), y


def _validate_X_val(owner, X_val, y_val, info: SupportInfo):
    """X_val as X is checked, with a message for raw rows the model cannot take."""
    try:
        return validate_X(owner, X_val, info, reset=False, y=y_val)
    except ValueError as err:
        if "could not convert" not in str(err) and "n_features" not in str(err):
            raise
        raise ValueError(
            f"X_val is not in the filter's input space ({err}). The rows of "
            "X_val go to the model as given: a Pipeline step before the filter "
            "does not transform them. Pass pipe[:-1].transform(X_val), or put "
            "the preprocessing inside the filter: "
            "InfluenceFilter(make_pipeline(preprocessing, model))."
        ) from err


def _routed_fit_params(owner, fit_params, caller: str) -> dict:
    if _routing_enabled():
        routed = process_routing(owner, caller, **fit_params)
        return dict(routed.estimator.fit)
    return dict(fit_params)


def _check_checkpoints(method, method_param, info: SupportInfo) -> None:
    if method.needs_checkpoints and not info.adapter.records_checkpoints(info.final):
        raise ValueError(
            f"method={method_param!r} needs training checkpoints, which "
            f"{info.name} does not record; only skorch nets do (with "
            "TracInCheckpoints)."
        )


#: what constraint="auto" and rounds="auto" become under a fairness objective:
#: benchmarks/bench_fairness.py's best configuration for fairness
#: (results/fairness.md); under any other objective, no constraint and one round
AUTO_FAIRNESS = {"constraint": "utility", "rounds": 3}
#: what rounds="auto" becomes with a bound (``Fairness(bound=b)``): the most
#: refits of the search over how many rows to act on (``_bound.search_to_bound``)
AUTO_BOUND_ROUNDS = 5


def target_bound(objective) -> float | None:
    """The bound on the target objective's value (``Fairness(bound=b)``), or None."""
    return getattr(objective, "bound", None)


def _check_bound(owner, objective, method) -> None:
    """A bound needs a method that predicts the objective's change, and a cap."""
    if target_bound(objective) is None:
        return
    objective.validate()
    if not method.needs_objective:
        raise ValueError(
            f"A bound (bound={objective.bound!r}) sizes the rounds by the "
            f"predicted change of the objective, and method={owner.method!r} "
            "measures none. Use a method that measures an objective ('ip', "
            "'influence_function', ...) or drop the bound."
        )
    if owner.prune_ratio == "negative":
        raise ValueError(
            f"With a bound (bound={objective.bound!r}) prune_ratio caps the rows "
            "acted on: pass a float prune_ratio, not 'negative'."
        )


def resolve_schedule(owner, objective, method) -> tuple[Objective | None, int]:
    """``owner``'s constraint and rounds, "auto" resolved, checked before any training.

    With a bound on the objective, ``rounds`` is the most rounds ("auto":
    :data:`AUTO_BOUND_ROUNDS`).
    """
    _check_bound(owner, objective, method)
    fair = isinstance(objective, Fairness) and method.needs_objective
    negative = owner.prune_ratio == "negative"
    constraint = getattr(owner, "constraint", None)
    rounds = getattr(owner, "rounds", 1)
    if isinstance(constraint, str) and constraint == "auto":
        constraint = AUTO_FAIRNESS["constraint"] if fair else None
    if isinstance(rounds, str) and rounds == "auto":
        if target_bound(objective) is not None:
            rounds = AUTO_BOUND_ROUNDS
        else:
            rounds = AUTO_FAIRNESS["rounds"] if fair and not negative else 1
    if rounds > 1 and negative:
        raise ValueError(
            "rounds > 1 spreads a fraction of the rows over the rounds; "
            "prune_ratio='negative' has none. Pass a float prune_ratio."
        )
    if constraint is not None:
        if not method.needs_objective:
            raise ValueError(
                f"constraint={constraint!r} compares the predicted changes of "
                f"two objectives, but method={owner.method!r} measures none."
            )
        constraint = resolve_objective(constraint)
        constraint.validate()
    return constraint, int(rounds)


def _check_surrogate(owner) -> None:
    """With ``surrogate``, ``estimator`` is only refitted: it needs ``fit``, and
    ``sample_weight`` for "reweight"."""
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import has_fit_parameter

    if getattr(owner, "surrogate", None) is None:
        return
    est = owner.estimator
    final = est.steps[-1][1] if isinstance(est, Pipeline) else est
    if getattr(owner, "action", "remove") == "reweight" and not has_fit_parameter(
        final, "sample_weight"
    ):
        raise ValueError(
            f"action='reweight' refits the estimator with sample_weight, and "
            f"{type(final).__name__}.fit takes none. Use action='remove' or 'relabel'."
        )


def _check_action(owner, info: SupportInfo) -> None:
    """``action`` against the estimator, before any training."""
    action = getattr(owner, "action", "remove")
    if action == "reweight" and not info.adapter.accepts_sample_weight(info.final):
        raise ValueError(
            f"action='reweight' needs an estimator whose fit takes sample_weight; "
            f"{info.name}.fit does not. Use action='remove' or 'relabel'."
        )


def _check_fairness_target(objective, classes, info: SupportInfo):
    """A fairness objective's positive label (a label of y), and the objective to score with.

    The positive label follows the metrics' rule (one function:
    :func:`~skinfluence.metrics.check_pos_label`), which also refuses a target
    that is not binary. The objective scored with sees labels as the model
    does (a class index where the model fits indices) and does not warn
    about the groups: ``fit`` warns once, before training.
    """
    if not isinstance(objective, Fairness):
        return None, objective
    pos_label = check_pos_label(classes, objective.pos_label, source="classes of y")
    objective = objective._quiet()
    if info.adapter.fits_class_indices:  # the model sees class indices
        code = int(np.flatnonzero(classes == pos_label)[0])
        objective.set_params(pos_label=code)
    return pos_label, objective


def _check_sensitive(objective, X_val, sensitive_features, s_val) -> None:
    if objective is None or not objective.requires_sensitive_features:
        return
    name = type(objective).__name__.lower()
    if X_val is None and sensitive_features is None:
        raise ValueError(
            f"The {name} objective needs sensitive_features: pass "
            "fit(X, y, sensitive_features=...)."
        )
    if X_val is not None and s_val is None:
        raise ValueError(
            f"The {name} objective needs sensitive_features_val for the rows of X_val."
        )


def validate_problem(
    owner,
    X,
    y,
    sensitive_features,
    X_val,
    y_val,
    sensitive_features_val,
    fit_params,
    *,
    caller: str = "fit",
    validated: bool = False,
) -> Problem:
    """Check everything ``fit`` takes, before any training.

    Parameters
    ----------
    owner : InfluenceFilter or InfluenceSampler
        Its parameters (``estimator``, ``objective``, ``method``) are read;
        ``validate_data`` sets ``n_features_in_`` on it.
    validated : bool, default=False
        Whether ``X`` and ``y`` went through :func:`validate_X` already.
    """
    info = check_supported(scoring_estimator(owner))
    _check_surrogate(owner)
    objective = resolve_objective(owner.objective)
    method = resolve_method(owner.method)
    uses_objective = method.needs_objective
    if uses_objective:
        objective.validate()
    method.validate()
    _check_checkpoints(method, owner.method, info)
    if method.inverts_curvature:
        info.adapter.check_curvature(info.final)
    _check_action(owner, info)
    constraint, rounds = resolve_schedule(owner, objective, method)
    for strategy in (objective if uses_objective else None, constraint):
        if strategy is not None:
            info.adapter.check_objective(info.final, strategy)

    if not validated:
        X, y = validate_X(owner, X, info, reset=True, y=y)
    n = _num_samples(X)
    if n < 3:
        raise ValueError(
            f"Found {n} sample(s): at least 3 are needed to split off "
            "validation rows and keep training rows."
        )
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    codes = codes.reshape(-1)
    if len(classes) < 2:
        raise ValueError(
            f"y holds one class ({as_python(classes[0])!r}); a classifier needs at "
            "least two classes."
        )
    if info.binary_only and len(classes) > 2:
        raise ValueError(
            f"{info.name} supports two classes only; y has {len(classes)} classes."
        )
    info.adapter.check_classes(info.final, len(classes))
    pos_label = None
    if uses_objective:
        pos_label, objective = _check_fairness_target(objective, classes, info)
    if constraint is not None:
        constraint = _check_fairness_target(constraint, classes, info)[1]
    # the groups a fairness gap is taken over warn (too many, floats), once
    fair = uses_objective and any(
        isinstance(o, Fairness) for o in (objective, constraint)
    )
    gap_groups = "sensitive_features" if X_val is None else "sensitive_features_val"

    def groups_of(s, name):
        if fair and name == gap_groups:
            return check_sensitive_features(s, name=name)
        return encode_groups(s)

    groups = None
    if sensitive_features is not None:
        m = _num_samples(sensitive_features)
        if m != n:
            raise ValueError(
                f"sensitive_features has {m} rows but X has {n}: their lengths "
                "must match."
            )
        groups = groups_of(sensitive_features, "sensitive_features")[0]

    if (X_val is None) != (y_val is None):
        raise ValueError("Pass both X_val and y_val, or neither.")
    y_val_fit = None
    if X_val is not None:
        X_val, y_val = _validate_X_val(owner, X_val, y_val, info)
        _labels_known(y_val, classes, "y_val")
        if len(np.unique(y_val)) < 2:
            raise ValueError(
                f"The validation rows hold one class ({as_python(y_val[0])!r}); "
                "influence on them needs at least two classes."
            )
        val_codes = np.searchsorted(classes, y_val)
        y_val_fit = info.adapter.fit_target(val_codes, y_val, info.final)
        if sensitive_features_val is not None:
            m = _num_samples(sensitive_features_val)
            if m != _num_samples(X_val):
                raise ValueError(
                    f"sensitive_features_val has {m} rows but X_val has "
                    f"{_num_samples(X_val)}: their lengths must match."
                )
            groups_of(sensitive_features_val, "sensitive_features_val")
    elif sensitive_features_val is not None:
        raise ValueError("sensitive_features_val is given without X_val and y_val.")

    for strategy in (objective if uses_objective else None, constraint):
        _check_sensitive(strategy, X_val, sensitive_features, sensitive_features_val)

    fit_params = _routed_fit_params(owner, fit_params, caller)
    needs_preflight = info.in_pipeline and (
        _has_missing(X) or (X_val is not None and _has_missing(X_val))
    )
    return Problem(
        info=info,
        objective=objective,
        method=method,
        X=X,
        y=y,
        y_fit=info.adapter.fit_target(codes, y, info.final),
        classes=classes,
        codes=codes,
        sensitive=sensitive_features,
        groups=groups,
        X_val=X_val,
        y_val=y_val,
        y_val_fit=y_val_fit,
        s_val=sensitive_features_val,
        fit_params=fit_params,
        needs_preflight=needs_preflight,
        pos_label=pos_label,
        constraint=constraint,
        rounds=rounds,
    )
