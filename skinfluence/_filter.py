"""InfluenceFilter: split -> fit -> score -> prune -> refit, as one estimator."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin
from sklearn.utils.metadata_routing import process_routing
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._cleaning import (
    Cleaning,
    clean,
    fit_steps,
    prepared_estimator,
    seed_random_states,
    with_weights,
)
from ._kernels._rows import seeded
from ._meta import InfluenceMixin, metadata_router
from ._influence_inputs import Problem, target_bound, validate_X, validate_problem
from ._influence_params import (
    FIT_PARAMS_DOC,
    PARAM_DOCS,
    PARAMETER_CONSTRAINTS,
    cleaning_settings,
)
from ._progress import reach, stage_bar, verbosity
from ._sklearn_compat import (
    _check_method_params,
    _estimator_has,
    _fit_context,
    _num_samples,
    _routing_enabled,
    _safe_indexing,
)
from .models import check_supported
from .objectives import Fairness

_DELEGATED = ("predict", "predict_proba", "predict_log_proba", "decision_function")


def _concat_rows(a, b):
    """Rows of ``a`` then rows of ``b`` (arrays, sparse matrices, DataFrames)."""
    import scipy.sparse as sp

    if hasattr(a, "iloc"):
        import pandas as pd

        return pd.concat([a, b], ignore_index=True)
    if sp.issparse(a):
        return sp.vstack([a, b], format=a.format)
    return np.concatenate([np.asarray(a), np.asarray(b)])


def _delegated(name: str, summary: str, returns: str):
    """A method of the filter that calls ``name`` of the refitted estimator."""

    def method(self, X, **params):
        X = self._input(X)
        return getattr(self.estimator_, name)(X, **self._route(name, params))

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"""{summary}

        Parameters
        ----------
        X : {{array-like, sparse matrix, DataFrame}} of shape (n_samples, n_features)
            Rows to predict.
        **params : dict
            Parameters of the estimator's ``{name}`` (routed when metadata
            routing is enabled).

        Returns
        -------
        {returns}
        """
    return available_if(_estimator_has(name))(method)


def _check_refit_on(refit_on, problem: Problem, n: int) -> None:
    """refit_on="all" with X_val cannot slice per-row fit parameters to X_val."""
    if refit_on != "all" or problem.X_val is None:
        return
    aligned = [
        k
        for k, v in problem.fit_params.items()
        if hasattr(v, "__len__") and _num_samples(v) == n
    ]
    if aligned:
        raise ValueError(
            f"refit_on='all' refits on X and X_val together, but the fit "
            f"parameters {aligned} have one value per row of X only; "
            "use refit_on='train' or drop them."
        )


def _final_rows(n: int, cleaning: Cleaning, problem: Problem, refit_on):
    """Per row of X: its weight in the final fit (0: not used) and its label."""
    weights = np.zeros(n)
    weights[cleaning.train] = cleaning.weights
    if refit_on == "all":
        weights[cleaning.validation] = 1.0
    codes = problem.codes.copy()
    codes[cleaning.train] = cleaning.codes
    return weights, codes


def _refit_through_surrogate(estimator, X_fit, y_fit, params, w, seed):
    """The user's estimator, scored through a surrogate: a seeded clone fitted
    on the kept rows, with ``sample_weight`` (a Pipeline's last step's) when
    rows were down-weighted."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    final = seed_random_states(clone(estimator), seed)
    if np.any(w < 1):
        name = "sample_weight"
        if isinstance(final, Pipeline) and not _routing_enabled():
            name = f"{final.steps[-1][0]}__sample_weight"
        elif isinstance(final, Pipeline):
            final.steps[-1][1].set_fit_request(sample_weight=True)
        params = {**params, name: w * np.asarray(params.get(name, 1.0))}
    with seeded(seed):
        return final.fit(X_fit, y_fit, **params)


def _refit(
    estimator, problem: Problem, cleaning: Cleaning, weights, codes, refit_on, *,
    surrogate=False,
):
    """The final model: a fresh clone fitted on the kept rows, from the same seed.

    With ``surrogate`` the rows were scored on a surrogate model and
    ``estimator`` is of no registered family: it is fitted as it is.
    """
    untouched = np.all(cleaning.weights == 1) and np.array_equal(
        cleaning.codes, problem.codes[cleaning.train]
    )
    if refit_on == "train" and untouched and not surrogate:
        return cleaning.first  # same rows, same labels, same seed: same model
    if refit_on == "train" and cleaning.final is not None and not surrogate:
        return cleaning.final  # a bound's last fit, measured: the same model
    info = problem.info
    rows = np.flatnonzero(weights > 0)
    X_fit = _safe_indexing(problem.X, rows)
    y_fit = info.adapter.fit_target(codes[rows], problem.classes[codes[rows]], info.final)
    params = _check_method_params(problem.X, problem.fit_params, indices=rows)
    w = weights[rows]
    if refit_on == "all" and problem.X_val is not None:
        X_fit = _concat_rows(X_fit, problem.X_val)
        y_fit = np.concatenate([y_fit, problem.y_val_fit])
        w = np.r_[w, np.ones(_num_samples(problem.X_val))]
    if surrogate:
        labels = problem.classes[codes[rows]]
        if refit_on == "all" and problem.X_val is not None:
            labels = np.concatenate([labels, problem.y_val])
        return _refit_through_surrogate(estimator, X_fit, labels, params, w, cleaning.seed)
    reweighted = np.any(w < 1)
    final = prepared_estimator(estimator, problem, cleaning.seed, weighted=reweighted)
    if reweighted:
        params = with_weights(final, params, w)
    with seeded(cleaning.seed):
        return final.fit(X_fit, y_fit, **params)


class InfluenceFilter(
    InfluenceMixin, ClassifierMixin, MetaEstimatorMixin, BaseEstimator
):
    """Train a classifier without its most detrimental training rows.

    ``fit`` splits off validation rows (stratified), fits a clone of
    ``estimator`` on the rest, scores every training row by its influence on
    an objective measured on the validation rows
    (:func:`~skinfluence.compute_influence`), drops the lowest scores and
    refits a fresh clone on the rows it keeps. Prediction delegates to that
    refitted clone, so the filter is a classifier to put at the end of a
    ``Pipeline`` and to tune with ``GridSearchCV``.

    Parameters
    ----------
    %(parameters)s

    Attributes
    ----------
    estimator_ : estimator
        The clone refitted on the kept rows; it makes the predictions.
    surrogate_ : estimator
        With ``surrogate``: the surrogate fitted on the training rows (the
        first round's), whose scores chose the rows.
    objective_ : Objective
        The objective used (the ``objective`` string resolved to an instance).
    method_ : Method
        The scoring method used.
    influence_ : ndarray of shape (n_samples,)
        The score of each row of ``X`` (higher is more beneficial) when it was
        last scored; NaN for the validation rows, which are not scored. With
        ``action="relabel"`` it is the predicted effect of the best label
        change, ``min_c s_i(y_i) - s_i(c)`` (negative: the change helps).
    sample_mask_ : ndarray of shape (n_samples,), dtype=bool
        The rows of ``X`` used in the final fit.
    sample_weight_ : ndarray of shape (n_samples,)
        The weight of each row of ``X`` in the final fit: 1 for a kept row,
        0 for a row not used (removed, or a validation row with
        ``refit_on="train"``), in between for a row down-weighted by
        ``action="reweight"``.
    y_fit_ : ndarray of shape (n_samples,)
        The label of each row of ``X`` in the final fit (``y``, with the
        relabelled rows changed).
    removed_indices_ : ndarray of int
        The rows of ``X`` dropped, in increasing order.
    relabeled_indices_ : ndarray of int
        The rows of ``X`` whose label was changed (``action="relabel"``), in
        increasing order.
    constraint_ : Objective or None
        The constraint used (``constraint`` resolved to an instance, "auto"
        to the utility objective under a fairness objective, else None).
    rounds_ : int
        The rounds of cleaning (``rounds``, "auto" resolved: 3 under a
        fairness objective, else 1; with a bound, ``Fairness(bound=b)``, the
        most refits of the search: "auto" is 5).
    gap_path_ : list of dict or None
        With a bound on the objective: one record per fit the search
        measured, in the order measured (``pandas.DataFrame(gap_path_)``
        tabulates them): ``round`` (the index of the measurement; 0: the
        first fit, on every training row), ``rows_acted`` (training rows
        acted on in that fit: the ``k`` of lowest effect in the first fit's
        scores, or fewer where the action or the constraint's linear program
        leaves some; each ``k`` is measured once, and the search moves both
        ways), ``gap`` (the objective's value on the validation rows: the
        soft gap the scores predict), ``hard_gap`` (the gap of the fit's
        predictions on the validation rows, :mod:`skinfluence.metrics`;
        equalized odds as the sum of its two gaps: the gap the bound is on),
        ``accuracy`` (of those predictions) and ``final`` (True for the
        record of the final model, the fit ``estimator_`` is). The final model
        (``estimator_`` with ``refit_on="train"``) is the measured fit of
        the smallest ``k`` whose ``hard_gap`` is at most the bound, else of
        the lowest ``hard_gap``; its record is not always the last. None
        without a bound.
    validation_indices_ : ndarray of int
        The rows of ``X`` held out as validation rows, in increasing order
        (empty when ``X_val`` is passed).
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during ``fit``, when ``X`` has string
        column names.

    See Also
    --------
    skinfluence.compute_influence : the scores, for a model you fitted.
    skinfluence.InfluenceSampler : the same cleaning as an imbalanced-learn
        sampler.

    Notes
    -----
    Both fits start from the same torch seed, drawn from ``random_state``, so
    the refitted model differs from the first only by the rows removed; when
    no row is removed and ``refit_on="train"`` the first model is reused.
    ``fit`` seeds torch's global generators inside
    ``torch.random.fork_rng``: their state after ``fit`` is what it was
    before.

    Inputs. With a bare model ``X`` must be numeric and finite; it is
    converted to the module's float dtype (float32, or float64 for a module
    instance in double precision) and ``y`` to class indices for skorch nets. With a
    ``Pipeline`` ``X`` goes to it as given (a DataFrame with categorical
    columns is fine); NaN is accepted only when the Pipeline's preprocessing
    removes it, which is checked before training. Sparse input to a skorch
    net is densified. For a ``Pipeline`` ending in a skorch net, the steps
    before the net must output float32 (or the module must cast).

    Fit parameters. ``sensitive_features`` (group labels of the rows of
    ``X``), ``X_val``, ``y_val`` and ``sensitive_features_val`` are consumed
    here: request them with ``set_fit_request`` when metadata routing is
    enabled, or pass them as ``influencefilter__sensitive_features=`` to a
    ``Pipeline`` when it is not. ``X_val`` must be in the filter's input
    space (a Pipeline before the filter does not transform it). Every other
    fit parameter (``sample_weight``, ...) is routed to the estimator's
    ``fit`` (without routing: passed through) and sliced to the rows each fit
    sees, as ``RANSACRegressor`` does. Influence scores do not weight rows.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import InfluenceFilter
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> flt = InfluenceFilter(LogisticRegression(), prune_ratio=0.1, random_state=0)
    >>> flt.fit(X, y)
    InfluenceFilter(estimator=LogisticRegression(), prune_ratio=0.1, random_state=0)
    >>> int(flt.sample_mask_.sum()), len(flt.removed_indices_), len(flt.validation_indices_)
    (144, 16, 40)
    >>> flt.predict(X[:5]).shape
    (5,)
    """

    _parameter_constraints: dict = dict(PARAMETER_CONSTRAINTS)

    @_fit_context(
        # the estimator is validated by its own fit
        prefer_skip_nested_validation=False
    )
    def fit(
        self,
        X,
        y,
        *,
        sensitive_features=None,
        X_val=None,
        y_val=None,
        sensitive_features_val=None,
        **fit_params,
    ):
        """Score the training rows, drop the most detrimental and refit.

        Parameters
        ----------
        %(fit_params)s

        Returns
        -------
        self : InfluenceFilter
            The fitted filter.
        """
        problem = validate_problem(
            self, X, y, sensitive_features, X_val, y_val, sensitive_features_val, fit_params
        )
        n = _num_samples(problem.X)
        _check_refit_on(self.refit_on, problem, n)
        bounded = target_bound(problem.objective) is not None  # last fit is the refit
        total = fit_steps(problem, problem.rounds + bounded, refit=not bounded)
        with verbosity(self.verbose), stage_bar(type(self).__name__, total, self.verbose):
            cleaning = clean(problem, **cleaning_settings(self))
            reach(total - fit_steps(problem, 0, refit=True), stage="refit")
            weights, codes = _final_rows(n, cleaning, problem, self.refit_on)
            estimator = _refit(
                self.estimator, problem, cleaning, weights, codes, self.refit_on,
                surrogate=self.surrogate is not None,
            )
            reach(total, stage="done")

        self.estimator_ = estimator
        if self.surrogate is not None:
            self.surrogate_ = cleaning.first
        self.objective_ = problem.objective
        self.method_ = problem.method
        self.constraint_ = problem.constraint
        self.rounds_ = problem.rounds
        self.gap_path_ = cleaning.gap_path
        self.classes_ = problem.classes
        self.influence_ = cleaning.influence(n)
        self.sample_mask_ = weights > 0
        self.sample_weight_ = weights
        self.y_fit_ = problem.classes[codes]
        self.removed_indices_ = cleaning.removed
        self.relabeled_indices_ = np.flatnonzero(codes != problem.codes)
        self.validation_indices_ = cleaning.validation
        self._support = problem.info
        return self

    # ------------------------------------------------------------ delegation
    def _input(self, X):
        check_is_fitted(self)
        return validate_X(self, X, self._support, reset=False)

    def _route(self, method: str, params: dict) -> dict:
        if _routing_enabled():
            return process_routing(self, method, **params).estimator[method]
        return params

    def predict(self, X, **params):
        """Predict class labels with the refitted estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Rows to predict.
        **params : dict
            Parameters of the estimator's ``predict`` (routed when metadata
            routing is enabled).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels (from ``classes_``).
        """
        X = self._input(X)
        pred = self.estimator_.predict(X, **self._route("predict", params))
        return self._support.adapter.labels_from_predictions(pred, self.classes_)

    predict_proba = _delegated(
        "predict_proba",
        "Class probabilities from the refitted estimator.",
        "proba : ndarray of shape (n_samples, n_classes)\n"
        "            Columns in the order of ``classes_``.",
    )
    predict_log_proba = _delegated(
        "predict_log_proba",
        "Class log-probabilities from the refitted estimator.",
        "log_proba : ndarray of shape (n_samples, n_classes)\n"
        "            Columns in the order of ``classes_``.",
    )
    decision_function = _delegated(
        "decision_function",
        "Decision function of the refitted estimator.",
        "scores : ndarray of shape (n_samples,) or (n_samples, n_classes)\n"
        "            The estimator's decision values.",
    )

    # ------------------------------------------------------- sklearn plumbing
    def get_metadata_routing(self):
        """Get the metadata routing of this object.

        ``sensitive_features``, ``X_val``, ``y_val`` and
        ``sensitive_features_val`` are consumed by the filter itself
        (``set_fit_request``); other fit parameters and the parameters of the
        prediction methods go to ``estimator``.

        Returns
        -------
        routing : MetadataRouter
            The routing information.
        """
        return metadata_router(self, [("fit", "fit")] + [(m, m) for m in _DELEGATED])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            info = check_supported(self.estimator)
            inner = get_tags(self.estimator)
        except (TypeError, ValueError, AttributeError):
            return tags
        fairness = self.objective == "fairness" or isinstance(self.objective, Fairness)
        tags.classifier_tags.multi_class = not (info.binary_only or fairness)
        if inner.classifier_tags is not None:
            tags.classifier_tags.poor_score = inner.classifier_tags.poor_score
        return tags


InfluenceFilter.__doc__ = InfluenceFilter.__doc__ % PARAM_DOCS
InfluenceFilter.fit.__doc__ = InfluenceFilter.fit.__doc__ % {"fit_params": FIT_PARAMS_DOC}
