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
