"""The README's quickstart runs as written, and its scores are what they claim."""

import pathlib
import re

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference as fl_dp
from sklearn import config_context
from sklearn.base import clone
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _quickstart_code():
    text = README.read_text()
    section = text[text.index("## Quickstart") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_quickstart_runs(capsys):
    namespace = {}
    with config_context(enable_metadata_routing=False):
        exec(compile(_quickstart_code(), str(README), "exec"), namespace)
    results = namespace["results"]
    assert list(results["param_influencefilter__prune_ratio"]) == [0.0, 0.05, 0.1]
    assert results["mean_test_accuracy"].between(0.7, 1.0).all()
    assert "mean_test_dp_gap" in capsys.readouterr().out

    # Recompute one cell of the search by hand: the candidate that prunes
    # nothing, on the first of the 3 folds GridSearchCV made (stratified, in
    # order). The filter seeds its fit from random_state, so a clone fitted
    # on the same rows is the same model; its gaps come from fairlearn.
    search, X, y, sex = (namespace[k] for k in ("search", "X", "y", "sex"))
    i = int(np.flatnonzero(results["param_influencefilter__prune_ratio"] == 0.0)[0])
    train, test = next(StratifiedKFold(3).split(X, y))
    pipe = clone(search.estimator).set_params(**results["params"][i])
    with config_context(enable_metadata_routing=True):
        pipe.fit(X.iloc[train], y.iloc[train], sensitive_features=sex.iloc[train])
    pred = pipe.predict(X.iloc[test])
    gap = fl_dp(y.iloc[test], pred, sensitive_features=sex.iloc[test])
    assert results["split0_test_dp_gap"][i] == pytest.approx(-gap, abs=1e-12)
    assert results["split0_test_accuracy"][i] == pytest.approx(
        accuracy_score(y.iloc[test], pred), abs=1e-12
    )
    # a gap of exactly 0 on every fold would make the check above vacuous
    assert (results[[f"split{k}_test_dp_gap" for k in range(3)]] < 0).any(axis=None)
