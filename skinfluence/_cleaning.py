"""Steps shared by InfluenceFilter and InfluenceSampler.

validate -> split -> fit a clone and score its training rows (cached)
-> select the rows to drop. The filter then refits; the sampler returns rows.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.metadata_routing import _routing_enabled, process_routing
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _assert_all_finite,
    _check_method_params,
    _num_samples,
    check_consistent_length,
    check_memory,
    column_or_1d,
    validate_data,
)

from ._compute import compute_influence, resolve_method, resolve_objective
from .methods import InfluenceFunction, IPEnsemble, Method
from .metrics._fairness import encode_groups
from .models._support import SupportInfo, check_supported
from .objectives import Fairness, Objective, Robustness

#: numpydoc text of the parameters both estimators share (written once).
PARAM_DOCS = {
    "estimator": """estimator : estimator object
        The classifier to clean the training set for, unfitted: a skorch
        ``NeuralNetClassifier`` (``CrossEntropyLoss`` or ``NLLLoss``) or
        ``NeuralNetBinaryClassifier``, a ``LogisticRegression``, a binary
        ``SGDClassifier(loss="log_loss")``, or a ``Pipeline`` ending in one of
        these (influence is then computed in the model's input space, after
        the earlier steps). It is cloned, never fitted itself.""",
    "objective": """objective : {"utility", "fairness", "robustness"} or Objective, \
default="utility"
        What influence is measured on, over the validation rows: the mean
        cross-entropy, a fairness gap between the groups of
        ``sensitive_features`` (binary targets), or the loss on adversarial
        copies. Pass an instance (``Fairness(metric="equal_opportunity")``)
        to set its parameters; they are then searchable as
        ``objective__<param>``.""",
    "method": """method : {"ip", "ip_ensemble", "tracin", "influence_function", \
"self_influence", "loss", "random"} or Method, default="ip"
        How each training row is scored. With a skorch net, "tracin" (and
        "self_influence", which then sums over checkpoints) adds a
        :class:`~skinfluence.callbacks.TracInCheckpoints` callback to the
        cloned net; other families have no checkpoints, so "tracin" is
        refused for them.""",
    "prune_ratio": """prune_ratio : float in [0, 1) or "negative", default=0.05
        The fraction of training rows to drop: the ``floor(prune_ratio *
        n_train)`` lowest scores (ties broken by row order). "negative" drops
        every row with a negative score.""",
    "validation_size": """validation_size : float in (0, 1) or int, default=0.2
        The held-out rows influence is measured on: a fraction of the rows of
        ``X`` (rounded up) or a number of rows. The split is stratified by
        ``y`` and, when ``sensitive_features`` are given, by group too (by
        ``y`` alone when a combination is too rare). Unused when ``X_val`` is
        passed to ``fit``.""",
    "batch_size": """batch_size : int, default=2048
        Rows per chunk in the scoring kernels; memory grows with
        ``batch_size`` times the number of parameters.""",
    "memory": """memory : str, joblib.Memory or None, default=None
        Caches the first fit and its scores, keyed on everything they depend
        on (estimator, objective, method, data, seeds), as ``Pipeline`` does
        for transformers: a search over ``prune_ratio`` (or ``refit_on``) then
        fits the first model once per split. Caching needs ``random_state`` to
        be an int (else every fit draws a new split). A str is a cache
        directory.""",
    "verbose": """verbose : int, default=0
        Shows a progress bar (tqdm) over the stages fit, score and
        refit/select when > 0.""",
    "random_state": """random_state : int, RandomState instance or None, default=None
        Seeds the split, torch's random number generator during the fits (so
        net initialisation and batch order repeat) and randomised methods. An
        int makes ``fit`` deterministic: same split, scores, kept rows and
        predictions. torch's global random state is restored after ``fit``.""",
}

PARAMETER_CONSTRAINTS = {
    "estimator": [HasMethods(["fit"])],
    "objective": [str, Objective],
    "method": [str, Method],
    "prune_ratio": [Interval(Real, 0, 1, closed="left"), StrOptions({"negative"})],
    "validation_size": [
        Interval(RealNotInt, 0, 1, closed="neither"),
        Interval(Integral, 1, None, closed="left"),
    ],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "memory": [None, str, HasMethods(["cache"])],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
}


_NO_Y = "no_validation"  # validate_data's marker for "no y"


@contextmanager
def seeded(seed: int):
    """Run a block with torch's generators seeded, restoring them afterwards."""
    devices = (
        list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def fit_and_score(
    estimator,
    X,
    y,
    fit_params,
    X_val,
    y_val,
    s_val,
    objective,
    method,
    batch_size,
    seed,
):
    """Fit a clone on ``(X, y)`` and score its rows: the step ``memory`` caches."""
    with seeded(seed):
        fitted = clone(estimator).fit(X, y, **fit_params)
    with seeded(seed):
        scores = compute_influence(
            fitted,
            X,
            y,
            X_val,
            y_val,
            objective=objective,
            method=method,
            sensitive_features_val=s_val,
            batch_size=batch_size,
            random_state=seed,
        )
    return fitted, scores


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
    pos_label: object  # the fairness objective's positive label (a label of y)


@dataclass
class Cleaning:
    """What the shared steps decided."""

    train: np.ndarray  # indices of X scored and fitted first
    validation: np.ndarray  # indices of X held out (empty with X_val)
    scores: np.ndarray  # per training row
    removed: np.ndarray  # indices of X dropped
    first: object  # the fitted first model
    seed: int


def _py(value):
    """A numpy scalar as a Python one, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def _has_missing(X) -> bool:
    if hasattr(X, "isna"):
        return bool(X.isna().to_numpy().any())
    if sp.issparse(X):
        return bool(np.isnan(X.data).any()) if X.dtype.kind in "fc" else False
    arr = np.asarray(X)
    if arr.dtype.kind in "fc":
        return bool(np.isnan(arr).any())
    if arr.dtype == object:
        import pandas as pd

        return bool(pd.isna(arr).any())
    return False


def _check_no_inf(X) -> None:
    """Infinity in a numeric column of raw X (DataFrame, array, sparse)."""
    if hasattr(X, "select_dtypes"):
        values = X.select_dtypes(include="number").to_numpy(dtype=np.float64)
    elif sp.issparse(X):
        values = X.data
    else:
        values = np.asarray(X)
        if values.dtype == object:
            try:
                values = values.astype(np.float64)
            except (TypeError, ValueError):
                return
    if values.dtype.kind in "fc" and np.isinf(values).any():
        raise ValueError("Input X contains infinity.")


def _labels_known(y_val, classes, what: str) -> None:
    unknown = np.setdiff1d(np.unique(y_val), classes)
    if len(unknown):
        raise ValueError(
            f"{what} holds labels that y does not: {unknown[:5].tolist()}; the "
            f"classes of y are {classes.tolist()}."
        )


def _check_strategy_params(objective, method) -> None:
    """Parameter checks the strategies make only when they run (after training)."""
    from .objectives._fairness import METRICS

    if isinstance(objective, Fairness) and objective.metric not in METRICS:
        raise ValueError(
            f"objective metric must be one of {METRICS}, got {objective.metric!r}."
        )
    if isinstance(objective, Robustness):
        objective._check()
    if isinstance(method, IPEnsemble):
        next(method.members({}, 0))
    if isinstance(method, InfluenceFunction):
        from .methods._influence_function import SOLVERS

        if method.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {method.solver!r}.")
        if not method.damping >= 0:
            raise ValueError(f"damping must be >= 0, got {method.damping!r}.")


def _with_final(estimator, fn):
    """A clone of ``estimator`` whose final model is ``fn(final model clone)``."""
    from sklearn.pipeline import Pipeline

    est = clone(estimator)
    if isinstance(est, Pipeline):
        name, final = est.steps[-1]
        return est.set_params(**{name: _with_final(final, fn)})
    if getattr(type(est), "_influence_meta_estimator", False):
        return est.set_params(estimator=_with_final(est.estimator, fn))
    return fn(est)


def _add_tracin_callback(net):
    from .callbacks import TracInCheckpoints

    callbacks = net.callbacks
    if isinstance(callbacks, list | tuple):
        for item in callbacks:
            cb = item[1] if isinstance(item, tuple | list) else item
            if isinstance(cb, TracInCheckpoints) or cb is TracInCheckpoints:
                return net
    params = net.get_params(deep=False)
    new = [("tracin_checkpoints", TracInCheckpoints())]
    if isinstance(callbacks, str) and callbacks == "disable":
        # keep skorch's default callbacks off, as "disable" asked
        params.update({f"callbacks__{n}": None for n, _ in net.get_default_callbacks()})
        params["callbacks"] = new
    else:
        params["callbacks"] = [*(callbacks or []), *new]
    return type(net)(**params)


class InfluenceMixin:
    """Validation, split, scoring and selection shared by the two estimators."""

    #: lets models/_support.py see through a nested influence meta-estimator
    _influence_meta_estimator = True

    # ----------------------------------------------------------- validation
    def _validate_X(self, X, info: SupportInfo, *, reset: bool, y=_NO_Y):
        """Check X (and y, unless omitted) as the estimator will take it."""
        if info.in_pipeline:
            out = validate_data(self, X, y, skip_check_array=True, reset=reset)
            X = out if y is _NO_Y else out[0]
            if not (hasattr(X, "iloc") or sp.issparse(X)):
                X = np.asarray(X)
            if getattr(X, "ndim", 2) != 2:
                raise ValueError(
                    f"Expected a 2D array for X, got an array of shape {X.shape}."
                )
            _check_no_inf(X)
            if y is _NO_Y:
                return X
            y = column_or_1d(y, warn=True)
            if y.dtype.kind in "fc":
                _assert_all_finite(y, input_name="y")
            check_consistent_length(X, y)
            return X, y
        sparse = info.family == "skorch" or get_tags(self.estimator).input_tags.sparse
        dtype = np.float32 if info.family == "skorch" else [np.float64, np.float32]
        params = dict(
            accept_sparse=["csr", "csc"] if sparse else False,
            dtype=dtype,
            ensure_all_finite=True,
            reset=reset,
        )
        if y is _NO_Y:
            X = validate_data(self, X, **params)
        else:
            X, y = validate_data(self, X, y, ensure_min_samples=2, **params)
        if info.family == "skorch" and sp.issparse(X):
            X = X.toarray()
        return X if y is _NO_Y else (X, y)

    def _encode_for_fit(self, codes, info: SupportInfo, y):
        if info.family != "skorch":
            return y
        return codes.astype(np.float32 if info.binary_net else np.int64)

    def _routed_fit_params(self, fit_params, caller: str) -> dict:
        if _routing_enabled():
            routed = process_routing(self, caller, **fit_params)
            return dict(routed.estimator.fit)
        return dict(fit_params)

    def _validate_problem(
        self,
        X,
        y,
        sensitive_features,
        X_val,
        y_val,
        sensitive_features_val,
        fit_params,
        *,
        caller: str = "fit",
    ) -> Problem:
        info = check_supported(self.estimator)
        objective = resolve_objective(self.objective)
        method = resolve_method(self.method)
        uses_objective = method.needs_objective
        if uses_objective:
            _check_strategy_params(objective, method)
        if method.needs_checkpoints and info.family != "skorch":
            raise ValueError(
                f"method={self.method!r} needs training checkpoints, which only "
                "skorch nets record (with TracInCheckpoints); "
                f"{type(info.final).__name__} has none."
            )

        X, y = self._validate_X(X, info, reset=True, y=y)
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
                f"y holds one class ({_py(classes[0])!r}); a classifier needs at least "
                "two classes."
            )
        if info.binary_only and len(classes) > 2:
            raise ValueError(
                f"{type(info.final).__name__} supports two classes only; y has "
                f"{len(classes)} classes."
            )
        fairness = uses_objective and isinstance(objective, Fairness)
        pos_label = classes[-1]
        if fairness and len(classes) > 2:
            raise ValueError(
                f"The fairness objective needs a binary target; y has "
                f"{len(classes)} classes (a multiclass target)."
            )
        if fairness and objective.pos_label is not None:
            if objective.pos_label not in classes.tolist():
                raise ValueError(
                    f"objective pos_label={objective.pos_label!r} is not one of the "
                    f"classes {classes.tolist()}."
                )
            pos_label = objective.pos_label
            if info.family == "skorch":  # the net sees class indices
                code = int(np.flatnonzero(classes == objective.pos_label)[0])
                objective = clone(objective).set_params(pos_label=code)

        groups = None
        if sensitive_features is not None:
            m = _num_samples(sensitive_features)
            if m != n:
                raise ValueError(
                    f"sensitive_features has {m} rows but X has {n}: their lengths "
                    "must match."
                )
            groups = encode_groups(sensitive_features)[0]

        if (X_val is None) != (y_val is None):
            raise ValueError("Pass both X_val and y_val, or neither.")
        y_val_fit = None
        if X_val is not None:
            X_val, y_val = self._validate_X(X_val, info, reset=False, y=y_val)
            _labels_known(y_val, classes, "y_val")
            if len(np.unique(y_val)) < 2:
                raise ValueError(
                    f"The validation rows hold one class ({_py(y_val[0])!r}); influence "
                    "on them needs at least two classes."
                )
            val_codes = np.searchsorted(classes, y_val)
            y_val_fit = self._encode_for_fit(val_codes, info, y_val)
            if sensitive_features_val is not None:
                m = _num_samples(sensitive_features_val)
                if m != _num_samples(X_val):
                    raise ValueError(
                        f"sensitive_features_val has {m} rows but X_val has "
                        f"{_num_samples(X_val)}: their lengths must match."
                    )
                encode_groups(sensitive_features_val)
        elif sensitive_features_val is not None:
            raise ValueError("sensitive_features_val is given without X_val and y_val.")

        if uses_objective and objective.requires_sensitive_features:
            if X_val is None and sensitive_features is None:
                raise ValueError(
                    f"The {type(objective).__name__.lower()} objective needs "
                    "sensitive_features: pass fit(X, y, sensitive_features=...)."
                )
            if X_val is not None and sensitive_features_val is None:
                raise ValueError(
                    f"The {type(objective).__name__.lower()} objective needs "
                    "sensitive_features_val for the rows of X_val."
                )

        fit_params = self._routed_fit_params(fit_params, caller)
        needs_preflight = info.in_pipeline and (
            _has_missing(X) or (X_val is not None and _has_missing(X_val))
        )
        return Problem(
            info=info,
            objective=objective,
            method=method,
            X=X,
            y=y,
            y_fit=self._encode_for_fit(codes, info, y),
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
        )

    # ---------------------------------------------------------------- split
    def _n_validation(self, n: int) -> int:
        size = self.validation_size
        n_val = (
            math.ceil(size * n) if isinstance(size, Real) and size < 1 else int(size)
        )
        if not 1 <= n_val <= n - 2:
            raise ValueError(
                f"validation_size={size!r} leaves {n_val} validation rows of {n}; "
                "at least one validation row and two training rows are needed."
            )
        return n_val

    def _split(self, problem: Problem, seed: int):
        """Stratified train/validation indices (sorted)."""
        n = len(problem.codes)
        n_val = self._n_validation(n)
        candidates = []
        if problem.groups is not None:
            combo = problem.codes * (problem.groups.max() + 1) + problem.groups
            candidates.append(np.unique(combo, return_inverse=True)[1].reshape(-1))
        candidates.append(problem.codes)
        for strata in candidates:
            counts = np.bincount(strata)
            k = len(counts)
            if counts.min() >= 2 and n_val >= k and n - n_val >= k:
                cv = StratifiedShuffleSplit(1, test_size=n_val, random_state=seed)
                train, val = next(cv.split(np.zeros((n, 1)), strata))
                return np.sort(train), np.sort(val)
        # some class is too rare to stratify: its rows train, the rest are shuffled
        counts = np.bincount(problem.codes)
        rare = counts[problem.codes] < 2
        rest = np.flatnonzero(~rare)
        if n_val > len(rest) - 1:
            raise ValueError(
                f"Too few rows to split off {n_val} validation rows: classes "
                f"{problem.classes[counts < 2].tolist()} have one row each."
            )
        cv = ShuffleSplit(1, test_size=n_val, random_state=seed)
        tr, va = next(cv.split(np.zeros((len(rest), 1))))
        return np.sort(np.r_[np.flatnonzero(rare), rest[tr]]), np.sort(rest[va])

    def _check_split(self, problem: Problem, train, val) -> None:
        """Errors a split would only cause after training."""
        classes = problem.classes
        missing = np.setdiff1d(np.arange(len(classes)), problem.codes[train])
        if len(missing):
            raise ValueError(
                f"The training rows hold no row of class {_py(classes[missing[0]])!r}; "
                "lower validation_size."
            )
        if problem.X_val is not None:
            return
        val_classes = np.unique(problem.codes[val])
        if len(val_classes) < 2:
            raise ValueError(
                f"The validation split holds one class ({_py(classes[val_classes[0]])!r}); "
                "influence on it needs at least two classes: raise validation_size "
                "or pass X_val and y_val."
            )

    def _check_groups(self, problem: Problem, y_val, s_val) -> None:
        """The validation rows must define the fairness gap (before training)."""
        objective = problem.objective
        if not (problem.method.needs_objective and isinstance(objective, Fairness)):
            return
        codes, names = encode_groups(s_val)
        if len(names) < 2:
            raise ValueError(
                f"The validation rows hold one group of sensitive_features "
                f"({names[0]!r}); the fairness objective compares two or more. "
                "Raise validation_size or pass X_val."
            )
        pos = problem.pos_label
        conditions = {
            "demographic_parity": [],
            "equal_opportunity": [("a positive label", y_val == pos)],
            "equalized_odds": [
                ("a positive label", y_val == pos),
                ("a negative label", y_val != pos),
            ],
        }[objective.metric]
        for what, cond in conditions:
            for g, name in enumerate(names):
                if not np.any((codes == g) & cond):
                    raise ValueError(
                        f"Group {name!r} has no validation row with {what}, so "
                        f"the {objective.metric} gap is undefined; raise "
                        "validation_size or pass X_val."
                    )

    def _preflight(self, problem: Problem, train) -> None:
        """NaN in raw X: does the Pipeline's preprocessing remove it?

        The Pipeline's earlier steps are fitted on the training rows and
        applied to every row of X (and X_val): the model must see no NaN.
        """
        from sklearn.pipeline import Pipeline

        est = self.estimator
        if not isinstance(est, Pipeline):
            return  # a nested influence estimator checks its own input
        if est.steps[-1][1] is not problem.info.final:
            return  # nested Pipeline: its own steps may impute
        parts = [problem.X] + ([] if problem.X_val is None else [problem.X_val])
        if len(est.steps) > 1:
            head = clone(est[:-1]).fit(
                _safe_indexing(problem.X, train), problem.y_fit[train]
            )
            parts = [head.transform(p) for p in parts]
        for part in parts:
            arr = part.toarray() if sp.issparse(part) else np.asarray(part)
            if not np.isfinite(np.asarray(arr, dtype=np.float64)).all():
                raise ValueError(
                    "Input X contains NaN that the Pipeline's preprocessing does "
                    "not remove: impute it, or drop those rows."
                )

    def _prepared_estimator(self, problem: Problem):
        method = problem.method
        wants_ck = method.needs_checkpoints or getattr(method, "use_checkpoints", False)
        if problem.info.family == "skorch" and wants_ck:
            return _with_final(self.estimator, _add_tracin_callback)
        return clone(self.estimator)

    # ------------------------------------------------------------ the steps
    def _n_prune(self, n_train: int) -> int:
        return int(math.floor(self.prune_ratio * n_train + 1e-9))

    def _clean(self, problem: Problem, progress) -> Cleaning:
        """Split, fit the first model, score and select the rows to drop."""
        rng = check_random_state(self.random_state)
        split_seed, seed = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=2))
        n = len(problem.codes)
        if problem.X_val is None:
            train, val = self._split(problem, split_seed)
            X_val = _safe_indexing(problem.X, val)
            y_val, y_val_fit = problem.y[val], problem.y_fit[val]
            s_val = (
                None
                if problem.sensitive is None
                else _safe_indexing(problem.sensitive, val)
            )
        else:
            train, val = np.arange(n), np.arange(0)
            X_val, y_val, y_val_fit = problem.X_val, problem.y_val, problem.y_val_fit
            s_val = problem.s_val
        self._check_split(problem, train, val)
        if s_val is not None:
            self._check_groups(problem, y_val, s_val)
        if self.prune_ratio != "negative":
            k = self._n_prune(len(train))
            if len(train) - k < len(problem.classes):
                raise ValueError(
                    f"prune_ratio={self.prune_ratio!r} would remove {k} of "
                    f"{len(train)} training rows, leaving fewer rows than classes."
                )
        if problem.needs_preflight:
            self._preflight(problem, train)

        estimator = self._prepared_estimator(problem)
        fit_params = _check_method_params(problem.X, problem.fit_params, indices=train)
        cached = check_memory(self.memory).cache(fit_and_score)
        progress.set_postfix_str("fit and score")
        first, scores = cached(
            estimator,
            _safe_indexing(problem.X, train),
            problem.y_fit[train],
            fit_params,
            X_val,
            y_val_fit,
            s_val,
            problem.objective,
            problem.method,
            self.batch_size,
            seed,
        )
        progress.update(2)
        scores = np.asarray(scores, dtype=np.float64)
        if not np.all(np.isfinite(scores)):
            raise ValueError(
                "The influence scores contain NaN or infinity; did training "
                "diverge? Check the estimator's learning rate and the input scale."
            )
        if self.prune_ratio == "negative":
            drop = np.flatnonzero(scores < 0)
        else:
            drop = np.sort(
                np.argsort(scores, kind="stable")[: self._n_prune(len(train))]
            )
        kept_codes = np.delete(problem.codes[train], drop)
        lost = np.setdiff1d(np.arange(len(problem.classes)), kept_codes)
        if len(lost):
            raise ValueError(
                f"prune_ratio={self.prune_ratio!r} would remove every training row "
                f"of class {_py(problem.classes[lost[0]])!r}; lower prune_ratio."
            )
        return Cleaning(
            train=train,
            validation=val,
            scores=scores,
            removed=train[drop],
            first=first,
            seed=seed,
        )

    def _influence_array(self, n: int, cleaning: Cleaning) -> np.ndarray:
        out = np.full(n, np.nan)
        out[cleaning.train] = cleaning.scores
        return out


def progress_bar(owner, verbose, total: int):
    """A tqdm bar over the stages of ``fit`` (disabled when not verbose)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=type(owner).__name__, disable=not verbose, leave=False
    )
