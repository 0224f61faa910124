"""The README's quickstart runs as written."""

import pathlib
import re

import pytest
from sklearn import config_context

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
    # the fairness scorer is the negated gap of the routed sensitive features
    assert (results["mean_test_dp_gap"] <= 0).all()
    assert "mean_test_dp_gap" in capsys.readouterr().out
