"""The flow shared by InfluenceFilter and InfluenceSampler, as module functions.

validate (``_influence_inputs.validate_problem``) -> :func:`split` -> fit a
clone and score its training rows (:func:`fit_and_score`, cached by
``memory``) -> :func:`select` the rows to drop. The filter then refits
(:func:`refit`); the sampler returns rows. Each step takes what it needs
explicitly and returns what it decided.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.validation import check_is_fitted, check_memory

from ._compute import compute_influence
from ._influence_inputs import Problem, as_python
from ._sklearn_compat import _check_method_params, _safe_indexing
from .kernels import derive_seed
from .metrics import check_groups_defined, encode_groups
from .models import (
    ModelAdapter,
    as_torch_model,
    check_supported,
    register_adapter,
    with_checkpoints,
)
from .objectives import Fairness


class InfluenceMixin:
    """Base of skinfluence's meta-estimators: InfluenceFilter, InfluenceSampler.

    Their model family is registered once (:class:`InfluenceMetaAdapter`),
    so a filter can wrap another filter. Input tags follow the wrapped
    estimator.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self.estimator)
            info = check_supported(self.estimator)
        except (TypeError, ValueError, AttributeError):
            return tags
        tags.input_tags.sparse = (
            inner.input_tags.sparse
            if info.in_pipeline
            else info.adapter.accepts_sparse(info.final)
        )
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags


class InfluenceMetaAdapter(ModelAdapter):
    """skinfluence's own meta-estimators, as wrappers of their ``estimator``.

    A fitted one converts to its (re)fitted model, ``estimator_``.
    """

    def handles(self, estimator) -> bool:
        return isinstance(estimator, InfluenceMixin)

    def inner(self, meta):
        return meta.estimator

    def rewrap(self, meta, inner):
        return clone(meta).set_params(estimator=inner)

    def is_fitted(self, meta) -> bool:
        return hasattr(meta, "influence_")

    def to_torch(self, meta):
        check_is_fitted(meta, "influence_")
        return as_torch_model(meta.estimator_)


register_adapter(InfluenceMetaAdapter())


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
    estimator, X, y, fit_params, X_val, y_val, s_val, objective, method, batch_size, seed
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
class Cleaning:
    """What the shared steps decided."""

    train: np.ndarray  # indices of X scored and fitted first
    validation: np.ndarray  # indices of X held out (empty with X_val)
    scores: np.ndarray  # per training row
    removed: np.ndarray  # indices of X dropped
    first: object  # the fitted first model
    seed: int

    def influence(self, n: int) -> np.ndarray:
        """One score per row of X; NaN for the rows not scored."""
        out = np.full(n, np.nan)
        out[self.train] = self.scores
        return out


# ------------------------------------------------------------------ the split
def n_validation(validation_size, n: int) -> int:
    """Number of validation rows ``validation_size`` asks for among ``n``."""
    size = validation_size
    n_val = math.ceil(size * n) if isinstance(size, Real) and size < 1 else int(size)
    if not 1 <= n_val <= n - 2:
        raise ValueError(
            f"validation_size={size!r} leaves {n_val} validation rows of {n}; "
            "at least one validation row and two training rows are needed."
        )
    return n_val


def split(problem: Problem, validation_size, seed: int):
    """Stratified train/validation indices (sorted), by class and group."""
    n = len(problem.codes)
    n_val = n_validation(validation_size, n)
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


def check_split(problem: Problem, train, val) -> None:
    """Errors a split would only cause after training."""
    classes = problem.classes
    missing = np.setdiff1d(np.arange(len(classes)), problem.codes[train])
    if len(missing):
        raise ValueError(
            f"The training rows hold no row of class "
            f"{as_python(classes[missing[0]])!r}; lower validation_size."
        )
    if problem.X_val is not None:
        return
    val_classes = np.unique(problem.codes[val])
    if len(val_classes) < 2:
        raise ValueError(
            f"The validation split holds one class "
            f"({as_python(classes[val_classes[0]])!r}); influence on it needs at "
            "least two classes: raise validation_size or pass X_val and y_val."
        )


def check_groups(problem: Problem, y_val, s_val) -> None:
    """The validation rows must define the fairness gap (before training)."""
    objective = problem.objective
    if not (problem.method.needs_objective and isinstance(objective, Fairness)):
        return
    codes, names = encode_groups(s_val)
    check_groups_defined(
        objective.metric,
        y_val,
        codes,
        names,
        problem.pos_label,
        rows="validation rows",
        remedy="Raise validation_size or pass X_val.",
        min_groups=2,
    )


def preflight(estimator, problem: Problem, train) -> None:
    """NaN in raw X: does the Pipeline's preprocessing remove it?

    The Pipeline's earlier steps are fitted on the training rows and applied
    to every row of X (and X_val): the model must see no NaN.
    """
    if not isinstance(estimator, Pipeline):
        return  # a nested influence estimator checks its own input
    if estimator.steps[-1][1] is not problem.info.final:
        return  # nested Pipeline: its own steps may impute
    parts = [problem.X] + ([] if problem.X_val is None else [problem.X_val])
    if len(estimator.steps) > 1:
        head = clone(estimator[:-1]).fit(
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


# ----------------------------------------------------------- fit and select
def _unseeded(value) -> bool:
    return value is None or isinstance(value, np.random.RandomState)


def prepared_estimator(estimator, problem: Problem, seed: int):
    """An unfitted clone of ``estimator`` ready for the fits of one ``fit``.

    Its model records checkpoints when the method uses them, and every
    ``random_state`` parameter left unseeded (None or a RandomState) is set to
    ``seed``, as ``RANSACRegressor`` seeds its estimator, so that an int
    ``random_state`` makes ``fit`` deterministic. Seeds the user set are kept.
    """
    method = problem.method
    wants = method.needs_checkpoints or method.wants_checkpoints
    est = with_checkpoints(estimator) if wants else clone(estimator)
    seeds = {
        name: seed
        for name, value in est.get_params(deep=True).items()
        if name.split("__")[-1] == "random_state" and _unseeded(value)
    }
    return est.set_params(**seeds) if seeds else est


def n_prune(prune_ratio, n_train: int) -> int:
    """``floor(prune_ratio * n_train)`` (robust to floating-point rounding)."""
    return int(math.floor(prune_ratio * n_train + 1e-9))


def select(scores: np.ndarray, prune_ratio) -> np.ndarray:
    """Positions (sorted) of the rows to drop: the lowest scores, ties by order."""
    if prune_ratio == "negative":
        return np.flatnonzero(scores < 0)
    return np.sort(np.argsort(scores, kind="stable")[: n_prune(prune_ratio, len(scores))])


def _validation_rows(problem: Problem, validation_size, split_seed: int):
    n = len(problem.codes)
    if problem.X_val is not None:
        return (
            np.arange(n),
            np.arange(0),
            (problem.X_val, problem.y_val, problem.y_val_fit, problem.s_val),
        )
    train, val = split(problem, validation_size, split_seed)
    s_val = None if problem.sensitive is None else _safe_indexing(problem.sensitive, val)
    rows = (_safe_indexing(problem.X, val), problem.y[val], problem.y_fit[val], s_val)
    return train, val, rows


def clean(
    problem: Problem,
    *,
    estimator,
    prune_ratio,
    validation_size,
    batch_size: int,
    memory,
    random_state,
    progress,
) -> Cleaning:
    """Split, fit the first model, score its training rows, select the rows to drop."""
    rng = check_random_state(random_state)
    split_seed, seed = derive_seed(rng), derive_seed(rng)
    train, val, (X_val, y_val, y_val_fit, s_val) = _validation_rows(
        problem, validation_size, split_seed
    )
    check_split(problem, train, val)
    if s_val is not None:
        check_groups(problem, y_val, s_val)
    if prune_ratio != "negative":
        k = n_prune(prune_ratio, len(train))
        if len(train) - k < len(problem.classes):
            raise ValueError(
                f"prune_ratio={prune_ratio!r} would remove {k} of {len(train)} "
                "training rows, leaving fewer rows than classes."
            )
    if problem.needs_preflight:
        preflight(estimator, problem, train)

    prepared = prepared_estimator(estimator, problem, seed)
    fit_params = _check_method_params(problem.X, problem.fit_params, indices=train)
    cached = check_memory(memory).cache(fit_and_score)
    progress.set_postfix_str("fit and score")
    first, scores = cached(
        prepared,
        _safe_indexing(problem.X, train),
        problem.y_fit[train],
        fit_params,
        X_val,
        y_val_fit,
        s_val,
        problem.objective,
        problem.method,
        batch_size,
        seed,
    )
    progress.update(2)
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError(
            "The influence scores contain NaN or infinity; did training "
            "diverge? Check the estimator's learning rate and the input scale."
        )
    drop = select(scores, prune_ratio)
    kept_codes = np.delete(problem.codes[train], drop)
    lost = np.setdiff1d(np.arange(len(problem.classes)), kept_codes)
    if len(lost):
        raise ValueError(
            f"prune_ratio={prune_ratio!r} would remove every training row "
            f"of class {as_python(problem.classes[lost[0]])!r}; lower prune_ratio."
        )
    return Cleaning(
        train=train,
        validation=val,
        scores=scores,
        removed=train[drop],
        first=first,
        seed=seed,
    )


def progress_bar(owner, verbose, total: int):
    """A tqdm bar over the stages of ``fit`` (disabled when not verbose)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=type(owner).__name__, disable=not verbose, leave=False
    )
