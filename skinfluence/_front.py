"""``fairness_front``: the accuracy-fairness front of the user's own data, one row per bound."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Memory
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from ._bound import hard_gap
from ._filter import InfluenceFilter
from ._sklearn_compat import _safe_indexing
from .baselines import reweighing_weights
from .metrics import check_pos_label
from .models import sample_weight_params, with_sample_weight
from .objectives import Fairness
from .objectives._fairness import check_bound

__all__ = ["fairness_front"]

#: the columns of the front, in order
COLUMNS = (
    "method",
    "bound",
    "validation_gap",
    "validation_hard_gap",
    "validation_accuracy",
    "test_gap",
    "test_accuracy",
    "rows_touched",
    "fits",
    "seconds",
)

#: fairlearn's ThresholdOptimizer constraint for each metric
_THRESHOLDS = {
    "demographic_parity": "demographic_parity",
    "equal_opportunity": "true_positive_rate_parity",
    "equalized_odds": "equalized_odds",
}

#: fairlearn's moment for each metric
_MOMENTS = {
    "demographic_parity": "DemographicParity",
    "equal_opportunity": "TruePositiveRateParity",
    "equalized_odds": "EqualizedOdds",
}


def _computed_calls(location) -> float:
    """Calls a joblib cache at ``location`` holds (each ran once: a cache miss);
    NaN for a cache without a location."""
    if location is None:
        return np.nan
    return float(sum(1 for _ in Path(location).rglob("output.pkl")))


def _scores(model, X, y, s, metric, pos_label):
    """Hard gap (soft objective's convention) and accuracy of ``model`` on rows."""
    if X is None:
        return np.nan, np.nan
    pred = np.asarray(model.predict(X)).reshape(-1)
    y = np.asarray(y).reshape(-1)
    return hard_gap(metric, y, pred, s, pos_label), float(np.mean(pred == y))


def fairness_front(
    estimator,
    X,
    y,
    *,
    sensitive_features,
    bounds=(0.01, 0.02, 0.05, 0.1),
    X_test=None,
    y_test=None,
    sensitive_features_test=None,
    metric="demographic_parity",
    pos_label=None,
    prune_ratio=0.2,
    baselines=False,
    memory=None,
    random_state=0,
    **filter_params,
) -> pd.DataFrame:
    """The accuracy-fairness front of an estimator: one cleaned fit per bound.

    For each bound ``b``, an :class:`~skinfluence.InfluenceFilter` with
    ``objective=Fairness(metric, bound=b)`` is fitted on ``(X, y)``: it
    scores the rows once, on its first fit, and searches how many of the
    lowest-scored rows to act on, the fewest whose refit's gap of hard
    predictions on the validation rows is at most ``b`` (within
    ``prune_ratio`` of the training rows and ``rounds`` refits). The
    filters share one cache (``memory``, a temporary joblib Memory by
    default), so the first fit and its scores, identical for every bound,
    are computed once, and so is a refit on the same rows measured for
    several bounds.

    Parameters
    ----------
    estimator : estimator object
        The classifier to clean for, unfitted (as ``InfluenceFilter`` takes it).
    X : {array-like, DataFrame} of shape (n_samples, n_features)
        The rows to clean (validation rows are split off them).
    y : array-like of shape (n_samples,)
        Binary labels.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, k)
        Group labels of the rows of ``X``.
    bounds : sequence of float in (0, 1), default=(0.01, 0.02, 0.05, 0.1)
        The gaps to reach, one row of the front each.
    X_test, y_test, sensitive_features_test : array-like, default=None
        Held-out rows: their hard gap and accuracy are reported (NaN without).
    metric : {"demographic_parity", "equal_opportunity", "equalized_odds"}, \
            default="demographic_parity"
        The fairness gap (:class:`~skinfluence.objectives.Fairness`).
    pos_label : scalar, default=None
        The positive label (:class:`~skinfluence.objectives.Fairness`).
    prune_ratio : float in [0, 1), default=0.2
        The cap on the share of training rows acted on, per bound.
    baselines : bool, default=False
        Also fit, on the filters' training rows (the same split), the
        estimator unchanged ("none") and with Kamiran-Calders reweighing
        (:func:`skinfluence.baselines.reweighing_weights` as
        ``sample_weight``), one row each with ``bound`` NaN, and, when
        fairlearn is installed, its ``ThresholdOptimizer`` on the unchanged
        fit (thresholds from the validation rows; it predicts with the
        groups, and needs them at prediction time: one row, no fit) and its
        ``ExponentiatedGradient`` at each bound (predictions with
        ``random_state``, so repeatable). The estimator must take
        ``sample_weight``.
    memory : str, joblib.Memory or None, default=None
        The cache the filters share; None: a temporary directory, removed
        afterwards. A str is a cache directory.
    random_state : int, default=0
        Of every filter (the same split for every bound) and of
        ``ExponentiatedGradient``'s predictions.
    **filter_params : dict
        Other parameters of ``InfluenceFilter`` (``method``, ``action``,
        ``constraint``, ``rounds``, ``validation_size``, ...).

    Returns
    -------
    front : pandas.DataFrame
        One row per bound (and per baseline), with columns ``method``
        ("influence", and with ``baselines``: "none", "kamiran_calders",
        "threshold_optimizer", "exponentiated_gradient"),
        ``bound``, ``validation_gap`` (the soft gap, the objective's value,
        of the final model on the validation rows), ``validation_hard_gap``
        (the gap of its hard predictions there: the value the bound is on)
        and ``validation_accuracy``, ``test_gap`` and ``test_accuracy`` (of
        hard predictions on ``X_test``), ``rows_touched`` (training rows
        acted on), ``fits`` (model fits run for this row: the first fit and
        one per number of rows the search measured, the final model being
        one of them, plus a final refit with ``refit_on="all"`` or a
        ``surrogate``; cache hits are not counted, so the shared first fit
        counts once) and ``seconds`` (wall time of this row). Gaps follow
        the objective's convention (equalized odds: the sum of its two
        gaps).

    See Also
    --------
    skinfluence.plotting.plot_fairness_front : draws the front.
    skinfluence.InfluenceFilter : one point of the front; its ``gap_path_``
        holds the fits its search measured.

    Examples
    --------
    Groups ``s`` that share the label more often than not, and a noisy copy
    of them among the features:

    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import fairness_front
    >>> X, y = make_classification(n_samples=600, n_features=4, n_informative=3,
    ...                            n_redundant=0, flip_y=0.05, random_state=0)
    >>> rng = np.random.RandomState(1)
    >>> s = np.where(rng.rand(600) < np.where(y == 1, 0.65, 0.35), "m", "f")
    >>> X = np.c_[X, (s == "m") + rng.randn(600)]
    >>> front = fairness_front(LogisticRegression(), X, y, sensitive_features=s,
    ...                        bounds=(0.05, 0.15), method="influence_function")
    >>> front[["bound", "rows_touched", "fits"]].to_dict("list")
    {'bound': [0.05, 0.15], 'rows_touched': [47, 35], 'fits': [5, 1]}
    >>> bool((front["validation_hard_gap"] <= front["bound"]).all())
    True

    The first fit (no row acted on) is shared: 6 fits for the two bounds,
    where two separate filters would make 5 + 2 (the first fit, then four
    and one refits measured).
    """
    bounds = [check_bound(b) for b in bounds]
    if not bounds or any(b is None for b in bounds):
        raise ValueError(f"bounds must be numbers in (0, 1), got {bounds!r}.")
    Fairness(metric=metric, pos_label=pos_label).validate()
    if (X_test is None) != (y_test is None) or (
        X_test is not None and sensitive_features_test is None
    ):
        raise ValueError(
            "Pass X_test, y_test and sensitive_features_test together, or none."
        )
    with tempfile.TemporaryDirectory() as tmp:
        mem = Memory(tmp, verbose=0) if memory is None else memory
        location = mem if isinstance(mem, str) else getattr(mem, "location", None)
        rows, flt = [], None
        for b in bounds:
            start, calls = time.perf_counter(), _computed_calls(location)
            flt = InfluenceFilter(
                estimator,
                objective=Fairness(metric=metric, pos_label=pos_label, bound=b),
                prune_ratio=prune_ratio,
                memory=mem,
                random_state=random_state,
                **filter_params,
            ).fit(X, y, sensitive_features=sensitive_features)
            # the filter reuses its last measured fit unless it refits on more rows
            refit = (
                flt.refit_on != "train" or getattr(flt, "surrogate", None) is not None
            )
            last = next(r for r in flt.gap_path_ if r["final"])
            test = _scores(
                flt, X_test, y_test, sensitive_features_test, metric,
                _pos(y, pos_label),
            )  # fmt: skip
            rows.append(
                {
                    "method": "influence",
                    "bound": b,
                    "validation_gap": last["gap"],
                    "validation_hard_gap": last["hard_gap"],
                    "validation_accuracy": last["accuracy"],
                    "test_gap": test[0],
                    "test_accuracy": test[1],
                    "rows_touched": last["rows_acted"],
                    "fits": _computed_calls(location) - calls + refit,
                    "seconds": time.perf_counter() - start,
                }
            )
        if baselines:
            rows += _baselines(
                estimator, X, y, sensitive_features, flt, bounds, metric,
                pos_label, (X_test, y_test, sensitive_features_test), random_state,
            )  # fmt: skip
    front = pd.DataFrame(rows, columns=list(COLUMNS))
    if front["fits"].notna().all():
        front["fits"] = front["fits"].astype(int)
    return front


def _pos(y, pos_label):
    return check_pos_label(np.unique(np.asarray(y)), pos_label, source="classes of y")


def _baselines(estimator, X, y, s, flt, bounds, metric, pos_label, test, seed):
    """Kamiran-Calders and fairlearn's ExponentiatedGradient on the filter's rows."""
    val = flt.validation_indices_
    train = np.setdiff1d(np.arange(len(np.asarray(y))), val)
    Xt, yt = _safe_indexing(X, train), np.asarray(y)[train]
    st, sv = _safe_indexing(s, train), _safe_indexing(s, val)
    Xv, yv = _safe_indexing(X, val), np.asarray(y)[val]
    pos = _pos(y, pos_label)
    out = []

    def row(method, bound, model, fits, start, touched):
        vg, va = _scores(model, Xv, yv, sv, metric, pos)
        tg, ta = _scores(model, *test, metric, pos)
        return {
            "method": method, "bound": bound, "validation_gap": np.nan,
            "validation_hard_gap": vg, "validation_accuracy": va, "test_gap": tg,
            "test_accuracy": ta, "rows_touched": touched, "fits": fits,
            "seconds": time.perf_counter() - start,
        }  # fmt: skip

    start = time.perf_counter()
    plain = clone(estimator).fit(Xt, yt)
    out.append(row("none", np.nan, plain, 1, start, 0))
    start = time.perf_counter()
    w = reweighing_weights(yt, sensitive_features=st)
    est = with_sample_weight(estimator)
    model = est.fit(Xt, yt, **sample_weight_params(est, w))
    out.append(row("kamiran_calders", np.nan, model, 1, start, len(train)))
    try:
        from fairlearn import postprocessing, reductions
    except ImportError:  # optional
        return out
    start = time.perf_counter()
    to = postprocessing.ThresholdOptimizer(
        estimator=_Proba64(plain), constraints=_THRESHOLDS[metric], prefit=True,
        predict_method="predict_proba",
    )  # fmt: skip
    to.fit(Xv, yv, sensitive_features=sv)  # thresholds from the validation rows
    vg, va = _scores(_Grouped(to, sv, seed), Xv, yv, sv, metric, pos)
    tg, ta = _scores(_Grouped(to, test[2], seed), *test, metric, pos)
    out.append({
        "method": "threshold_optimizer", "bound": np.nan, "validation_gap": np.nan,
        "validation_hard_gap": vg, "validation_accuracy": va, "test_gap": tg,
        "test_accuracy": ta, "rows_touched": 0, "fits": 0,
        "seconds": time.perf_counter() - start,
    })  # fmt: skip
    for b in bounds:
        start = time.perf_counter()
        moment = getattr(reductions, _MOMENTS[metric])(difference_bound=b)
        with config_context(enable_metadata_routing=True):  # Pipelines take weights
            eg = reductions.ExponentiatedGradient(with_sample_weight(estimator), moment)
            eg.fit(Xt, yt, sensitive_features=st)
        model = _Seeded(eg, seed)
        out.append(
            row("exponentiated_gradient", b, model, int(eg.n_oracle_calls_), start, 0)
        )
    return out


class _Proba64(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose ``predict_proba`` is float64 (fairlearn's
    ThresholdOptimizer fails on a net's float32 probabilities under pandas 3)."""

    def __init__(self, model=None):
        self.model = model

    def fit(self, X, y=None):
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict_proba(self, X):
        return np.asarray(self.model.predict_proba(X), dtype=np.float64)


class _Grouped:
    """A fitted ThresholdOptimizer predicting rows whose groups it is given."""

    def __init__(self, model, groups, seed):
        self.model, self.groups, self.seed = model, groups, seed

    def predict(self, X):
        return self.model.predict(X, sensitive_features=self.groups, random_state=self.seed)


class _Seeded:
    """A fitted ExponentiatedGradient predicting with a fixed seed (repeatable)."""

    def __init__(self, model, seed):
        self.model, self.seed = model, seed

    def predict(self, X):
        return self.model.predict(X, random_state=self.seed)
