"""InfluenceSampler: influence-based cleaning as an imbalanced-learn sampler."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ._cleaning import clean, fit_steps
from ._meta import InfluenceMixin, metadata_router
from ._influence_inputs import target_bound, validate_problem, validate_X
from ._influence_params import (
    FIT_PARAMS_DOC,
    PARAM_DOCS,
    PARAMETER_CONSTRAINTS,
    cleaning_settings,
    scoring_estimator,
)
from ._progress import stage_bar, verbosity
from ._sklearn_compat import METADATA_METHODS, _num_samples, _safe_indexing
from .models import check_supported

try:  # optional: the sampler is usable without it, but not in its Pipeline
    from imblearn.base import BaseSampler as _Base
    from imblearn.utils import check_target_type
except ImportError:  # pragma: no cover - exercised without the extra only
    _Base = BaseEstimator
    check_target_type = None


_OWN_PARAMS = ("sensitive_features", "X_val", "y_val", "sensitive_features_val")


class InfluenceSampler(InfluenceMixin, _Base):
    """Drop the most detrimental training rows, as an imbalanced-learn sampler.

    ``fit_resample`` does what :class:`~skinfluence.InfluenceFilter` does up to
    its refit: split off validation rows, fit a clone of ``estimator`` on the
    rest, score the training rows by influence and drop the lowest. It
    returns the rows it keeps, for the next steps of an
    ``imblearn.pipeline.Pipeline`` to train on.

    Parameters
    ----------
    %(parameters)s

    Attributes
    ----------
    sample_indices_ : ndarray of int
        The rows of ``X`` returned by ``fit_resample``, in increasing order.
    removed_indices_ : ndarray of int
        The rows of ``X`` dropped, in increasing order.
    relabeled_indices_ : ndarray of int
        The rows of ``X`` whose label the returned ``y`` changes
        (``action="relabel"``).
    validation_indices_ : ndarray of int
        The rows of ``X`` held out as validation rows (empty when ``X_val`` is
        passed).
    influence_ : ndarray of shape (n_samples,)
        The score of each row of ``X``; NaN for validation rows.
    gap_path_ : list of dict or None
        With a bound on the objective (``Fairness(bound=b)``): one record
        per fit the search measured, as :class:`~skinfluence.InfluenceFilter`'s
        (``final`` marks the fit on the rows returned). None without a bound.
    estimator_ : estimator
        The clone fitted on the training rows, whose influence was measured.
    objective_ : Objective
        The objective used.
    method_ : Method
        The scoring method used.
    n_features_in_ : int
        Number of features seen during ``fit_resample``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` has string column names.

    See Also
    --------
    skinfluence.InfluenceFilter : the same cleaning followed by a refit, as a
        classifier.

    Notes
    -----
    A sampler returns rows, not weights: ``action="reweight"`` is refused
    (use :class:`~skinfluence.InfluenceFilter`). ``action="relabel"``
    returns the relabelled ``y``.

    imbalanced-learn's ``Pipeline`` does not slice metadata: after this
    sampler drops rows, a ``sample_weight`` (or any other per-row fit
    parameter) meant for a later step still has one value per original row
    and no longer matches. Use :class:`~skinfluence.InfluenceFilter`, which
    slices every routed fit parameter, when later steps need per-row
    metadata. Fit parameters passed to ``fit_resample`` itself (other than the
    ones below) go to the inner estimator's ``fit``, sliced to its training
    rows.

    ``sensitive_features``, ``X_val``, ``y_val`` and ``sensitive_features_val``
    are consumed here. In an imbalanced-learn ``Pipeline`` they reach the
    sampler only with metadata routing enabled
    (``set_fit_resample_request(sensitive_features=True)``): without it,
    imbalanced-learn (0.14) does not pass ``stepname__param`` arguments to a
    sampler's ``fit_resample``. The returned ``X`` and ``y`` are rows of the
    ones given, in their types (a DataFrame stays a DataFrame, a list a
    list).

    Examples
    --------
    Relabel (rather than drop) the 2%% of rows whose label change is
    predicted to lower the validation loss most; with ``refit_on="all"`` every
    row of ``X`` comes back:

    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import InfluenceSampler
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression())
    >>> sampler = InfluenceSampler(model, action="relabel", prune_ratio=0.02,
    ...                            refit_on="all", random_state=0)
    >>> X_res, y_res = sampler.fit_resample(X, y)
    >>> X_res.shape == X.shape, int((y_res != y).sum()) == len(sampler.relabeled_indices_)
    (True, True)
    """

    _parameter_constraints: dict = dict(PARAMETER_CONSTRAINTS)
    _sampling_type = "bypass"
    _estimator_type = "sampler"

    #: imbalanced-learn's template reads it; this sampler draws no strategy
    sampling_strategy = "bypass"

    def _check_X_y(self, X, y, accept_sparse=None):
        """imbalanced-learn's input hook: X as the estimator takes it."""
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        info = check_supported(scoring_estimator(self))
        X, y = validate_X(self, X, info, reset=True, y=y)
        return X, y, binarize_y

    def _fit_resample(self, X, y, **params):
        """Score the rows of the checked ``(X, y)`` and return those kept."""
        caller = "fit_resample" if "fit_resample" in METADATA_METHODS else "fit"
        own = [params.pop(name, None) for name in _OWN_PARAMS]
        if self.action == "reweight":
            raise ValueError(
                "InfluenceSampler cannot reweight: a sampler returns rows, not "
                "weights. Use action='remove' or 'relabel', or "
                "InfluenceFilter(action='reweight')."
            )
        problem = validate_problem(
            self, X, y, *own, params, caller=caller, validated=True
        )
        n = _num_samples(problem.X)
        bounded = target_bound(problem.objective) is not None  # one more fit
        total = fit_steps(problem, problem.rounds + bounded, refit=False)
        with verbosity(self.verbose), stage_bar(type(self).__name__, total, self.verbose):
            cleaning = clean(problem, **cleaning_settings(self))
        mask = np.ones(n, dtype=bool)
        mask[cleaning.removed] = False
        if self.refit_on == "train":
            mask[cleaning.validation] = False
        labels = problem.y.copy()
        labels[cleaning.train] = problem.classes[cleaning.codes]
        self.sample_indices_ = np.flatnonzero(mask)
        self.removed_indices_ = cleaning.removed
        self.relabeled_indices_ = np.flatnonzero(labels != problem.y)
        self.validation_indices_ = cleaning.validation
        self.influence_ = cleaning.influence(n)
        self.gap_path_ = cleaning.gap_path
        self.estimator_ = cleaning.first
        self.objective_ = problem.objective
        self.method_ = problem.method
        return (
            _safe_indexing(problem.X, self.sample_indices_),
            labels[self.sample_indices_],
        )

    def fit_resample(
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
        """Score the rows, drop the most detrimental and return the others.

        imbalanced-learn's ``fit_resample`` checks the inputs (through this
        sampler's ``_check_X_y``), calls ``_fit_resample`` and returns the rows
        in the types of the ones given; this method only names the parameters.

        Parameters
        ----------
        %(fit_params)s

        Returns
        -------
        X_resampled : {ndarray, sparse matrix, DataFrame} of shape (n_kept, n_features)
            The rows of ``X`` kept (``sample_indices_``).
        y_resampled : ndarray or Series of shape (n_kept,)
            Their labels.
        """
        return super().fit_resample(
            X,
            y,
            sensitive_features=sensitive_features,
            X_val=X_val,
            y_val=y_val,
            sensitive_features_val=sensitive_features_val,
            **fit_params,
        )

    def fit(self, X, y, **params):
        """Score the rows and choose the ones to drop (see ``fit_resample``).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Rows to clean.
        y : array-like of shape (n_samples,)
            Class labels.
        **params : dict
            As in ``fit_resample``. They are not declared metadata of
            ``fit``: an imbalanced-learn ``Pipeline`` routes metadata to a
            sampler's ``fit_resample`` (``set_fit_resample_request``).

        Returns
        -------
        self : InfluenceSampler
            The fitted sampler.
        """
        self.fit_resample(X, y, **params)
        return self

    def get_metadata_routing(self):
        """Get the metadata routing of this object.

        ``sensitive_features``, ``X_val``, ``y_val`` and
        ``sensitive_features_val`` are consumed by the sampler; other
        parameters of ``fit`` and ``fit_resample`` go to the estimator's
        ``fit``.

        Returns
        -------
        routing : MetadataRouter
            The routing information.
        """
        pairs = [("fit", "fit")]
        if "fit_resample" in METADATA_METHODS:
            pairs.append(("fit_resample", "fit"))
        return metadata_router(self, pairs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if getattr(tags, "sampler_tags", None) is not None:
            tags.sampler_tags.sample_indices = True
        return tags


InfluenceSampler.__doc__ = InfluenceSampler.__doc__ % PARAM_DOCS
InfluenceSampler.fit_resample.__doc__ = InfluenceSampler.fit_resample.__doc__ % {
    "fit_params": FIT_PARAMS_DOC
}
