"""Every private scikit-learn name skinfluence uses, in one place.

A scikit-learn release that moves one of them breaks this file only; its
test (``tests/test_sklearn_compat.py``) imports each name and checks its
behaviour on the versions the package declares (``scikit-learn>=1.8,<1.10``
in pyproject.toml: 1.8 is the first release in which every multiclass
LogisticRegression is multinomial).
"""

from __future__ import annotations

from sklearn.base import _fit_context
from sklearn.utils import _safe_indexing
from sklearn.utils._metadata_requests import METHODS as METADATA_METHODS
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.validation import (
    _assert_all_finite,
    _check_method_params,
    _estimator_has,
    _num_samples,
)

__all__ = [
    "METADATA_METHODS",
    "HasMethods",
    "Interval",
    "RealNotInt",
    "StrOptions",
    "_assert_all_finite",
    "_check_method_params",
    "_estimator_has",
    "_fit_context",
    "_num_samples",
    "_routing_enabled",
    "_safe_indexing",
    "fit_requests",
]


def fit_requests(estimator) -> dict:
    """``{param: request}`` of ``estimator``'s ``fit`` (metadata routing).

    A request is None (unset), True, False or an alias; a parameter that
    ``fit`` does not take is absent. Read through the private
    ``_get_metadata_request`` because a router (a skorch net) exposes its own
    requests nowhere else.
    """
    return dict(estimator._get_metadata_request().fit.requests)


# ------------------------------------------------ HistGradientBoosting internals
# Its trees have no public accessor: the predictors (one per iteration and
# class), their node arrays, the input preprocessing and the baseline
# prediction are private. Everything skinfluence reads of them is here.
def hgb_trees(est) -> list:
    """The fitted trees' node arrays, iteration-major (class-minor) order.

    Each is a structured array with the fields ``value`` and ``is_leaf`` among
    others; leaf values include the learning rate.
    """
    return [p.nodes for per_iter in est._predictors for p in per_iter]


def hgb_baseline(est):
    """The constant raw prediction the trees add to, shape ``(n_outputs,)``."""
    import numpy as np

    return np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)


def hgb_leaf_nodes(est, X):
    """Index of the node each row of ``X`` reaches in each tree, ``(n, n_trees)``.

    The library's own traversal (missing values, categorical bitsets) is
    used: each tree is evaluated with its node values replaced by the node
    indices, which are exact in float64.
    """
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    Xp = est._preprocess_X(X, reset=False)
    bitsets, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    n_threads = _openmp_effective_n_threads(None)
    out = np.empty((Xp.shape[0], sum(len(it) for it in est._predictors)), np.int64)
    t = 0
    for per_iter in est._predictors:
        for p in per_iter:
            nodes = p.nodes.copy()
            nodes["value"] = np.arange(len(nodes), dtype=nodes["value"].dtype)
            ids = TreePredictor(
                nodes, p.binned_left_cat_bitsets, p.raw_left_cat_bitsets
            ).predict(Xp, bitsets, f_idx_map, n_threads)
            out[:, t] = ids.astype(np.int64)
            t += 1
    return out
