"""Every private scikit-learn name skinfluence uses lives in _sklearn_compat:
each is importable and behaves as the package relies on, on the versions
pyproject.toml admits."""

import ast
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from skinfluence import _sklearn_compat as compat

PACKAGE = Path(__file__).resolve().parents[1] / "skinfluence"


def test_the_declared_versions_include_the_installed_one():
    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    assert (1, 8) <= (major, minor) < (1, 10)


def test_no_private_scikit_learn_name_outside_the_compat_module():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_sklearn_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
                private_module = any(part.startswith("_") for part in node.module.split("."))
                names = [a.name for a in node.names if a.name.startswith("_")]
                if private_module or names:
                    offenders.append(f"{path.relative_to(PACKAGE)}: {node.module} {names}")
    assert offenders == []


def test_safe_indexing_and_method_params_slice_rows():
    X = np.arange(12).reshape(6, 2)
    assert_array_equal(compat._safe_indexing(X, [1, 3]), X[[1, 3]])
    assert_array_equal(compat._safe_indexing(sp.csr_matrix(X), [2]).toarray(), X[[2]])
    params = compat._check_method_params(X, {"sample_weight": np.arange(6.0)}, indices=[0, 5])
    assert_array_equal(params["sample_weight"], [0.0, 5.0])
    assert compat._num_samples(X) == 6


def test_validation_helpers():
    with pytest.raises(ValueError):
        compat._assert_all_finite(np.array([1.0, np.nan]), input_name="y")
    assert "fit_resample" in compat.METADATA_METHODS or "fit" in compat.METADATA_METHODS
    assert compat._estimator_has("predict_proba")(type("M", (), {"estimator": LogisticRegression()})())
    assert compat._routing_enabled() is False


def test_parameter_constraints_and_fit_context():
    class Est(BaseEstimator):
        _parameter_constraints = {
            "a": [compat.Interval(compat.RealNotInt, 0, 1, closed="left")],
            "b": [compat.StrOptions({"x"}), compat.HasMethods(["fit"])],
        }

        def __init__(self, a=0.5, b="x"):
            self.a, self.b = a, b

        @compat._fit_context(prefer_skip_nested_validation=True)
        def fit(self, X=None):
            self.fitted_ = True
            return self

    assert Est().fit().fitted_
    assert Est(b=LogisticRegression()).fit().fitted_
    for bad in ({"a": 1.0}, {"a": 1}, {"b": "y"}):
        with pytest.raises(ValueError):
            Est(**bad).fit()
