"""The flow shared by InfluenceFilter and InfluenceSampler, as module functions.

validate (``_influence_inputs.validate_problem``) -> :func:`split` -> per
round: fit a clone and score its training rows (:func:`fit_and_score`, cached
by ``memory``) -> plan the action (``_actions.plan_round``) and apply it
(:func:`clean` runs the rounds). The filter then refits on the result; the
sampler returns rows. Each step takes what it needs explicitly and returns
what it decided.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state

from ._actions import action_effects as _effects
from ._actions import n_prune, plan_round, removal_floor
from ._bound import (
    _warn_bound,
    first_count,
    grid_step,
    group_order,
    measure_gap,
    objective_value,
    search_to_bound,
    signed_gap,
    warn_noisy_gap,
)
from ._compute import score_rows
from ._influence_inputs import Problem, as_python, target_bound
from ._kernels._rows import seeded
from ._memory import cache
from ._progress import reach
from ._sklearn_compat import _check_method_params, _safe_indexing
from .kernels import derive_seed
from .metrics import MIN_GROUP_ROWS, check_groups_defined, encode_groups
from .models import (
    rebuild_final,
    sample_weight_params,
    with_checkpoints,
    with_sample_weight,
)
from .objectives import Fairness


def fit_and_score(
    estimator,
    X,
    y,
    fit_params,
    X_val,
    y_val,
    s_val,
    objectives,
    method,
    batch_size,
    seed,
    relabel_to=None,
):
    """Fit a clone on ``(X, y)`` and score its rows: the step ``memory`` caches.

    Returns the fitted clone, the scores, shape ``(len(objectives),
    n_labels, n_rows)``: one score per row for each objective (the target,
    then the constraint) and each labelling of the rows: their own labels
    (``n_labels = 1``), or, with ``relabel_to`` (the labels ``fit`` takes,
    one per class), each class in turn, everything the method computes from
    the labels taken at the rows' own (:func:`relabel_influence`); and the
    method object that scored the target (:func:`score_rows`: its fitted
    state, e.g. a CG solve's ``cg_info_``).
    """
    fitted = fit_model(estimator, X, y, fit_params, seed)
    out, scorers = [], []
    for objective in objectives:
        options = {
            "objective": objective,
            "method": method,
            "sensitive_features_val": s_val,
            "batch_size": batch_size,
        }
        with seeded(seed):
            scores, scorer = score_rows(
                fitted, X, y, X_val, y_val, options, random_state=seed,
                classes=relabel_to,
            )  # fmt: skip
        out.append(scores[None] if relabel_to is None else scores)
        scorers.append(scorer)
    return fitted, np.asarray(out, dtype=np.float64), scorers[0]


def fit_model(estimator, X, y, fit_params, seed):
    """A clone of ``estimator`` fitted on ``(X, y)`` from ``seed``: the step a
    bound's search caches (``memory``) for each number of rows it measures."""
    with seeded(seed):
        return clone(estimator).fit(X, y, **fit_params)


def carry_fitted(method, scorer) -> None:
    """Set the public fitted attributes of ``scorer`` (a scoring clone) on ``method``.

    The meta-estimators' ``method_`` is the resolved ``method`` parameter;
    scoring runs on a clone of it, so what the clone fitted (the last
    round's ``cg_info_``, ``damping_`` of an ``InfluenceFunction``) is
    copied back, once the rounds are over (``method`` is part of the
    ``memory`` key of each round).
    """
    for key, value in vars(scorer).items():
        if key.endswith("_") and not key.startswith("_"):
            setattr(method, key, value)


@dataclass
class Cleaning:
    """What the shared steps decided, per training row."""

    train: np.ndarray  # indices of X scored and fitted first
    validation: np.ndarray  # indices of X held out (empty with X_val)
    scores: np.ndarray  # per training row: its score when last scored
    weights: np.ndarray  # per training row, in [0, 1]; 0 is removed
    codes: np.ndarray  # per training row: its class index after relabelling
    first: object  # the fitted first model
    seed: int
    #: with a bound: the fit on the final rows (measured; the filter's refit)
    final: object = None
    #: with a bound: one record per measured fit (:func:`measure_gap`)
    gap_path: list | None = None

    @property
    def removed(self) -> np.ndarray:
        """Indices of X dropped."""
        return self.train[self.weights == 0]

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
        min_rows=MIN_GROUP_ROWS,  # warns, naming each small group
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
        values = part.data if sp.issparse(part) else part  # sparse: the stored values
        if not np.isfinite(np.asarray(values, dtype=np.float64)).all():
            raise ValueError(
                "Input X contains NaN that the Pipeline's preprocessing does "
                "not remove: impute it, or drop those rows."
            )


# ----------------------------------------------------------- fit and select
def _unseeded(value) -> bool:
    return value is None or isinstance(value, np.random.RandomState)


def prepared_estimator(estimator, problem: Problem, seed: int, *, weighted=False):
    """An unfitted clone of ``estimator`` ready for the fits of one ``fit``.

    Its model records checkpoints when the method uses them, and every
    ``random_state`` parameter left unseeded (None or a RandomState) is set to
    ``seed``, as ``RANSACRegressor`` seeds its estimator, so that an int
    ``random_state`` makes ``fit`` deterministic. Seeds the user set are kept.
    With ``weighted`` its model takes ``sample_weight``. The model is as its
    family prepares it for fitting here (a skorch net casts its inputs to the
    module's dtype, see :class:`~skinfluence.models.SkorchAdapter`).
    """
    method = problem.method
    wants = method.needs_checkpoints or method.wants_checkpoints
    est = with_checkpoints(estimator) if wants else clone(estimator)
    est = rebuild_final(est, lambda adapter, model: adapter.prepared(model))
    if weighted:  # last: it sets metadata requests, which a rebuild may drop
        est = with_sample_weight(est)
    return seed_random_states(est, seed)


def seed_random_states(est, seed: int):
    """``est`` with every ``random_state`` parameter left unseeded (None or a
    RandomState) set to ``seed``; the seeds the user set are kept."""
    seeds = {
        name: seed
        for name, value in est.get_params(deep=True).items()
        if name.split("__")[-1] == "random_state" and _unseeded(value)
    }
    return est.set_params(**seeds) if seeds else est


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


def _round_sizes(total: int, rounds: int) -> list[int]:
    """``total`` rows spread over ``rounds`` rounds, the first ones larger."""
    return [len(part) for part in np.array_split(np.arange(total), rounds)]


def clean(
    problem: Problem,
    *,
    estimator,
    prune_ratio,
    validation_size,
    batch_size: int,
    memory,
    random_state,
    action: str = "remove",
) -> Cleaning:
    """Split, then per round: fit, score the training rows, plan and act.

    Parameters
    ----------
    problem : Problem
        The validated inputs.
    estimator : estimator
        The unfitted estimator (cloned for every fit).
    prune_ratio, validation_size, batch_size, memory, random_state
        As the meta-estimators document them.
    action : {"remove", "reweight", "relabel"}, default="remove"
        What happens to the rows selected. ``prune_ratio`` is spread over
        ``problem.rounds`` rounds, with a refit and new scores between them;
        after a round that changes nothing the next ones would repeat it, so
        they are skipped. With a bound on the objective
        (``Fairness(bound=b)``) the first fit's scores are the only ones:
        :func:`_search` acts on the ``k`` rows of lowest effect, each ``k``
        planned by ``_actions.plan_round`` (with the constraint, without the
        floor) and fitted through ``memory`` (:func:`fit_model`), and
        measured on the validation rows (:func:`measure_gap`: the soft gap
        ``J``, the hard gap the bound is on, the accuracy).
        ``_bound.search_to_bound`` chooses ``k``: first the count predicted
        to reach the bound (``_bound.first_count``), then the secant and
        Illinois regula falsi on the signed hard gap, up to
        ``problem.rounds`` refits and the ``prune_ratio`` cap. The measured
        fit of the chosen ``k`` is the final model.

    Returns
    -------
    Cleaning
    """
    if action == "relabel":
        problem.method.check_relabel()  # before any work
    rng = check_random_state(random_state)
    split_seed, seed = derive_seed(rng), derive_seed(rng)
    train, val, (X_val, y_val, y_val_fit, s_val) = _validation_rows(
        problem, validation_size, split_seed
    )
    check_split(problem, train, val)
    if s_val is not None:
        check_groups(problem, y_val, s_val)
    if prune_ratio != "negative" and action == "remove":
        k = n_prune(prune_ratio, len(train))
        if len(train) - k < len(problem.classes):
            raise ValueError(
                f"prune_ratio={prune_ratio!r} would remove {k} of {len(train)} "
                "training rows, leaving fewer rows than classes."
            )
    if problem.needs_preflight:
        preflight(estimator, problem, train)

    info, constraint, rounds = problem.info, problem.constraint, problem.rounds
    steps = info.adapter.fit_steps(info.final)
    prepared = prepared_estimator(estimator, problem, seed, weighted=action == "reweight")
    bound = target_bound(problem.objective)
    target = problem.objective
    if bound is not None:  # scores do not depend on it: one cache key for every bound
        target = clone(target).set_params(bound=None)
    objectives = (target,) + (() if constraint is None else (constraint,))
    n_classes = len(problem.classes)
    relabel_to = None  # the label fit takes for each class, in class order
    if action == "relabel":
        relabel_to = info.adapter.fit_target(
            np.arange(n_classes), problem.classes, info.final
        )
    cached = cache(memory, fit_and_score)

    n_train = len(train)
    weights, codes = np.ones(n_train), problem.codes[train].copy()
    scores_out = np.full(n_train, np.nan)
    acted = np.zeros(n_train, dtype=bool)
    sizes = None if prune_ratio == "negative" else _round_sizes(
        n_prune(prune_ratio, n_train), rounds
    )
    first = final = path = None  # the first round's fit; with a bound, the final one
    for r in range(rounds):
        reach(r * (steps + 1), stage=f"round {r + 1} of {rounds}: fit")
        rows = np.flatnonzero(weights > 0)
        fitted, scores, scorer = cached(
            prepared,
            *_fit_data(problem, prepared, train, weights, codes),
            X_val,
            y_val_fit,
            s_val,
            objectives,
            problem.method,
            batch_size,
            seed,
            relabel_to,
        )
        first = fitted if first is None else first
        reach((r + 1) * (steps + 1), stage=f"round {r + 1} of {rounds}: scored")
        if not np.all(np.isfinite(scores)):
            raise ValueError(
                "The influence scores contain NaN or infinity; did training "
                "diverge? Check the estimator's learning rate and the input scale."
            )
        effect, best = _effects(scores[0], codes[rows], action)
        guard = None
        if constraint is not None:  # the same action's effect on the constraint
            cons, idx = scores[1], np.arange(len(rows))
            guard = cons[0] if best is None else cons[codes[rows], idx] - cons[best, idx]
        scores_out[rows] = effect
        open_ = np.flatnonzero(~acted[rows])
        k = sizes[r] if sizes is not None else int(np.sum(effect[open_] < 0))
        floor = None
        if bound is not None:  # one ranking; search how many rows reach the bound
            final, path, weights, codes = _search(
                problem, prepared, fitted, (X_val, y_val, y_val_fit, s_val),
                train, (effect, best, guard), action,
                (n_prune(prune_ratio, n_train), bound, rounds),
                (batch_size, seed, memory), prune_ratio,
            )  # fmt: skip
            break
        if guard is not None:  # the plan's predicted change stops at J = 0
            value = objective_value(
                fitted, problem.objective, X_val, y_val_fit, s_val, batch_size, seed
            )
            floor = removal_floor(value, len(rows))
        delta = plan_round(
            effect[open_],
            k,
            action,
            constraint=None if guard is None else guard[open_],
            floor=floor,
        )
        hit = rows[open_[delta > 0]]
        if not len(hit):  # nothing changed: a further round would repeat this one
            break
        acted[hit] = True
        _apply(weights, codes, hit, delta[delta > 0], best, open_[delta > 0], action)
        _check_classes_left(problem, weights, codes, prune_ratio)
    _warn_damage(problem.classes, problem.codes[train], codes, weights, prune_ratio)
    carry_fitted(problem.method, scorer)  # after the loop: keys stay unchanged
    return Cleaning(
        train=train,
        validation=val,
        scores=scores_out,
        weights=weights,
        codes=codes,
        first=first,
        seed=seed,
        final=final,
        gap_path=path,
    )


def _fit_data(problem: Problem, prepared, train, weights, codes):
    """``(X, y, fit_params)`` of a fit on the training rows of positive weight."""
    info = problem.info
    rows = np.flatnonzero(weights > 0)
    y_rows = info.adapter.fit_target(codes[rows], problem.classes[codes[rows]], info.final)
    params = _check_method_params(problem.X, problem.fit_params, indices=train[rows])
    if np.any(weights[rows] < 1):
        params = with_weights(prepared, params, weights[rows])
    return _safe_indexing(problem.X, train[rows]), y_rows, params


def _apply(weights, codes, hit, strength, best, picked, action) -> None:
    """Act on the rows ``hit`` (in place): remove, down-weight by ``strength``
    or relabel to ``best[picked]``."""
    if action == "remove":
        weights[hit] = 0.0
    elif action == "reweight":
        weights[hit] *= 1.0 - strength
    else:
        codes[hit] = best[picked]


def _search(problem, prepared, first, val, train, effects, action, limits, run,
            prune_ratio):  # fmt: skip
    """A bound's cleaning: act on the ``k`` rows of lowest effect, ``k`` searched.

    ``effects`` is ``(effect, best, guard)`` of the first fit (all training
    rows), ``limits`` ``(cap, bound, rounds)``, ``run`` ``(batch_size, seed,
    memory)``. Every ``k`` measured is a plan of ``_actions.plan_round`` from
    the same scores (with the constraint, without the floor: the measured
    gap decides) and a cached fit (:func:`fit_model`), measured on the
    validation rows (:func:`measure_gap`); ``_bound.search_to_bound``
    chooses the ``k``. Returns the final fit, ``gap_path``, and the weights
    and labels of its rows.
    """
    (effect, best, guard), (cap, bound, rounds) = effects, limits
    batch_size, seed, memory = run
    n = len(train)
    fit = cache(memory, fit_model)
    record, selection = measure_gap(first, problem, val, batch_size, seed, 0, np.zeros(n, bool))
    order = group_order(selection)
    warn_noisy_gap(selection, bound)
    path, fits = [record], {0: (first, np.ones(n), problem.codes[train].copy(), record)}
    floor = removal_floor(record["gap"], n)
    k0 = first_count(effect, record["gap"], record["hard_gap"], bound, n, floor)

    def measure(k):
        weights, codes = np.ones(n), problem.codes[train].copy()
        delta = plan_round(effect, k, action, constraint=guard)
        hit = np.flatnonzero(delta > 0)
        _apply(weights, codes, hit, delta[hit], best, hit, action)
        _check_classes_left(problem, weights, codes, prune_ratio)
        fitted = fit(prepared, *_fit_data(problem, prepared, train, weights, codes), seed)
        record, selection = measure_gap(
            fitted, problem, val, batch_size, seed, len(path), delta > 0
        )
        path.append(record)
        fits[k] = (fitted, weights, codes, record)
        return record["hard_gap"], signed_gap(selection, order)

    first_gap = (record["hard_gap"], record["hard_gap"])
    k, why = search_to_bound(measure, first_gap, k0, cap, bound, rounds, grid_step(n))
    final, weights, codes, record = fits[k]
    for r in path:  # the final model's record (the search may measure past it)
        r["final"] = r is record
    if why is not None:
        _warn_bound(record, bound, prune_ratio, cap, rounds, why)
    return final, path, weights, codes


def with_weights(estimator, params: dict, weights: np.ndarray) -> dict:
    """``params`` plus the row weights (multiplying a user's sample_weight)."""
    out = dict(params)
    for key, w in sample_weight_params(estimator, weights).items():
        out[key] = w if key not in out else np.asarray(out[key]) * w
    return out


#: a class share moved by more than this many points, or a class left with
#: fewer rows than this, is reported
SHARE_SHIFT, MIN_CLASS_ROWS = 0.10, 10
#: prune_ratio="negative" acting on more than this share of rows is reported
NEGATIVE_SHARE = 0.10


def _warn_damage(classes, original, codes, weights, prune_ratio) -> None:
    """Warn, with the numbers, when the cleaning reshaped the classes.

    ``original`` and ``codes`` are the class indices of the training rows
    before and after, ``weights`` their weights (0: removed).
    """
    before = np.bincount(original, minlength=len(classes))
    after = np.bincount(codes[weights > 0], minlength=len(classes))
    share_before, share_after = before / before.sum(), after / max(after.sum(), 1)
    shift = np.abs(share_after - share_before)
    names = [as_python(c) for c in classes]
    if shift.max() > SHARE_SHIFT or after.min() < min(MIN_CLASS_ROWS, before.min()):
        warnings.warn(
            f"prune_ratio={prune_ratio!r} leaves {int(after.sum())} of "
            f"{int(before.sum())} training rows, with classes {names} counted "
            f"{after.tolist()} (before: {before.tolist()}); class shares "
            f"{np.round(share_after, 2).tolist()} (before: "
            f"{np.round(share_before, 2).tolist()}). The refitted model may be "
            "biased towards the classes left: lower prune_ratio.",
            UserWarning,
            stacklevel=4,
        )
    dropped = 1 - np.mean(weights > 0)
    if prune_ratio == "negative" and dropped > NEGATIVE_SHARE:
        warnings.warn(
            f"prune_ratio='negative' removed {dropped:.0%} of the training rows "
            f"({int(np.sum(weights == 0))} of {len(weights)}): every row with a "
            "negative score. Pass a float prune_ratio to bound it.",
            UserWarning,
            stacklevel=4,
        )


def _check_classes_left(problem: Problem, weights, codes, prune_ratio) -> None:
    kept = codes[weights > 0]
    lost = np.setdiff1d(np.arange(len(problem.classes)), kept)
    if len(lost):
        raise ValueError(
            f"prune_ratio={prune_ratio!r} would remove every training row of "
            f"class {as_python(problem.classes[lost[0]])!r}; lower prune_ratio."
        )


def fit_steps(problem: Problem, rounds: int, *, refit: bool) -> int:
    """Steps of a ``fit``'s progress bar: each round's epochs and scoring pass,
    and the refit's epochs."""
    steps = problem.info.adapter.fit_steps(problem.info.final)
    return rounds * (steps + 1) + (steps if refit else 0)
