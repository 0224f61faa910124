"""Steps shared by InfluenceFilter and InfluenceSampler.

split -> fit a clone and score its training rows (cached by ``memory``)
-> select the rows to drop. The filter then refits; the sampler returns rows.
Inputs are checked first, by :class:`InputsMixin`.
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
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils.validation import _check_method_params, check_memory

from ._compute import compute_influence
from ._influence_inputs import InputsMixin, Problem, as_python
from .metrics._fairness import encode_groups
from .objectives import Fairness


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
class Cleaning:
    """What the shared steps decided."""

    train: np.ndarray  # indices of X scored and fitted first
    validation: np.ndarray  # indices of X held out (empty with X_val)
    scores: np.ndarray  # per training row
    removed: np.ndarray  # indices of X dropped
    first: object  # the fitted first model
    seed: int


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


class InfluenceMixin(InputsMixin):
    """Validation, split, scoring and selection shared by the two estimators."""

    #: lets models/_support.py see through a nested influence meta-estimator
    _influence_meta_estimator = True

    def _input_tags(self, tags):
        """Set the input tags from the wrapped estimator.

        Returns ``(inner_tags, support_info)``, or None (tags untouched) when
        the estimator is not supported.
        """
        from .models._support import check_supported

        try:
            inner = get_tags(self.estimator)
            info = check_supported(self.estimator)
        except (TypeError, ValueError, AttributeError):
            return None
        tags.input_tags.sparse = info.family == "skorch" or inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return inner, info

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
                f"The training rows hold no row of class {as_python(classes[missing[0]])!r}; "
                "lower validation_size."
            )
        if problem.X_val is not None:
            return
        val_classes = np.unique(problem.codes[val])
        if len(val_classes) < 2:
            raise ValueError(
                f"The validation split holds one class ({as_python(classes[val_classes[0]])!r}); "
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
        wants_ck = method.needs_checkpoints or method.wants_checkpoints
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
