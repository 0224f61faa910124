"""skinfluence.plotting: what is drawn is checked against numpy / the search results."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.patches import StepPatch  # noqa: E402
from sklearn import config_context  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import make_scorer  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skinfluence import InfluenceFilter, InfluenceSampler  # noqa: E402
from skinfluence.metrics import demographic_parity_difference  # noqa: E402
from skinfluence.plotting import plot_influence, plot_pruning_curve  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def bar_containers(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def heights(container):
    return np.array([bar.get_height() for bar in container])


def bottoms(container):
    return np.array([bar.get_y() for bar in container])


def lefts(container):
    return np.array([bar.get_x() for bar in container])


def stairs(ax):
    return [p for p in ax.patches if isinstance(p, StepPatch)]


def vlines_x(ax):
    """x of the vertical lines drawn by axvline (both ends share it)."""
    out = []
    for line in ax.lines:
        x = np.asarray(line.get_xdata(), float)
        if len(x) == 2 and x[0] == x[1]:
            out.append(x[0])
    return out


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.fixture
def scores():
    return np.random.RandomState(0).standard_t(df=3, size=500)


# ------------------------------------------------------------- plot_influence
def test_bars_are_the_histogram_of_the_scores(scores):
    ax = plot_influence(scores, bins=30)
    (bars,) = bar_containers(ax)
    counts, edges = np.histogram(scores, bins=30)
    assert_array_equal(heights(bars), counts)
    assert_allclose(lefts(bars), edges[:-1])
    assert_allclose([b.get_width() for b in bars], np.diff(edges))
    assert stairs(ax) == [] and vlines_x(ax) == []
    assert legend_texts(ax) == ["scored rows (500)"]
    assert ax.get_xlabel().startswith("influence score")


def test_removed_rows_are_outlined_and_the_threshold_drawn(scores):
    removed = scores <= np.sort(scores)[24]  # the 25 lowest
    ax = plot_influence(scores, removed=removed, bins=25)
    (step,) = stairs(ax)
    edges = np.histogram_bin_edges(scores, bins=25)
    assert_array_equal(step.get_data().values, np.histogram(scores[removed], edges)[0])
    assert_allclose(step.get_data().edges, edges)
    assert vlines_x(ax) == [pytest.approx(np.sort(scores)[24])]
    assert legend_texts(ax) == ["scored rows (500)", "removed (25)"]


def test_removed_as_indices_equals_removed_as_mask(scores):
    idx = np.argsort(scores)[:10]
    mask = np.zeros(len(scores), bool)
    mask[idx] = True
    a = stairs(plot_influence(scores, removed=idx))[0].get_data().values
    b = stairs(plot_influence(scores, removed=mask))[0].get_data().values
    assert_array_equal(a, b)
    assert a.sum() == 10


def test_no_threshold_when_removed_rows_are_not_the_lowest(scores):
    removed = np.zeros(len(scores), bool)
    removed[[np.argmin(scores), np.argmax(scores)]] = True
    ax = plot_influence(scores, removed=removed)
    assert vlines_x(ax) == []
    assert stairs(ax)[0].get_data().values.sum() == 2


def test_groups_are_stacked_with_their_own_histograms(scores):
    groups = np.where(np.arange(len(scores)) % 3 == 0, "b", "a")
    ax = plot_influence(scores, groups=groups, bins=20)
    a, b = bar_containers(ax)
    edges = np.histogram_bin_edges(scores, bins=20)
    ca = np.histogram(scores[groups == "a"], edges)[0]
    cb = np.histogram(scores[groups == "b"], edges)[0]
    assert_array_equal(heights(a), ca)
    assert_array_equal(bottoms(a), 0)
    assert_array_equal(heights(b), cb)
    assert_array_equal(bottoms(b), ca)
    assert legend_texts(ax) == [
        f"a ({np.sum(groups == 'a')})",
        f"b ({np.sum(groups == 'b')})",
    ]


def test_noise_mask_as_groups_with_names(scores):
    noisy = scores < 0
    ax = plot_influence(
        scores, groups=pd.Series(noisy), group_names={True: "flipped", False: "clean"}
    )
    clean, flipped = bar_containers(ax)
    assert heights(flipped).sum() == noisy.sum()
    assert legend_texts(ax) == [f"clean ({np.sum(~noisy)})", f"flipped ({noisy.sum()})"]


def test_nan_scores_are_left_out_with_their_groups_and_removed(scores):
    s = scores.copy()
    s[:100] = np.nan
    groups = np.repeat(["x", "y"], 250)
    removed = np.zeros(500, bool)
    removed[:5] = True  # NaN rows: nothing left to outline
    removed[np.argsort(s)[:3]] = True  # argsort puts NaN last
    ax = plot_influence(s, groups=groups, removed=removed, bins=10)
    x, y = bar_containers(ax)
    edges = np.histogram_bin_edges(s[100:], bins=10)
    assert_array_equal(heights(x), np.histogram(s[100:250], edges)[0])
    assert_array_equal(heights(y), np.histogram(s[250:], edges)[0])
    assert stairs(ax)[0].get_data().values.sum() == 3


def test_explicit_bins_range_log_and_ax(scores):
    fig, ax = plt.subplots()
    edges = np.linspace(-2, 2, 9)
    out = plot_influence(scores, bins=edges, log=True, ax=ax)
    assert out is ax
    assert_array_equal(heights(bar_containers(ax)[0]), np.histogram(scores, edges)[0])
    assert ax.get_yscale() == "log"
    ax2 = plot_influence(scores, bins=4, range=(-1, 1))
    assert_array_equal(
        heights(bar_containers(ax2)[0]), np.histogram(scores, 4, range=(-1, 1))[0]
    )


def test_fitted_filter_plots_its_influence_and_removed_rows():
    X, y = make_classification(n_samples=300, random_state=0)
    flt = InfluenceFilter(LogisticRegression(), prune_ratio=0.1, random_state=0).fit(
        X, y
    )
    ax = plot_influence(flt, bins=15)
    scored = flt.influence_[~np.isnan(flt.influence_)]
    assert len(scored) == 300 - len(flt.validation_indices_)
    edges = np.histogram_bin_edges(scored, bins=15)
    assert_array_equal(heights(bar_containers(ax)[0]), np.histogram(scored, edges)[0])
    removed = flt.influence_[flt.removed_indices_]
    assert_array_equal(stairs(ax)[0].get_data().values, np.histogram(removed, edges)[0])
    assert vlines_x(ax) == [pytest.approx(removed.max())]
    # removed= overrides the filter's own
    assert (
        stairs(plot_influence(flt, removed=[flt.removed_indices_[0]]))[0]
        .get_data()
        .values.sum()
        == 1
    )


def test_fitted_sampler_is_accepted():
    X, y = make_classification(n_samples=200, random_state=1)
    sampler = InfluenceSampler(LogisticRegression(), prune_ratio=0.1, random_state=0)
    sampler.fit_resample(X, y)
    ax = plot_influence(sampler)
    assert stairs(ax)[0].get_data().values.sum() == len(sampler.removed_indices_)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(removed=np.ones(3, bool)), "boolean mask of shape"),
        (dict(removed=[0, 600]), "outside"),
        (dict(removed=[0.5]), "integer row indices"),
        (dict(groups=["a"] * 3), "one label per score"),
        (dict(groups=[None] * 500), "missing"),
    ],
)
def test_bad_inputs(scores, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_influence(scores, **kwargs)


def test_bad_scores():
    with pytest.raises(ValueError, match="1-D"):
        plot_influence(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="No finite"):
        plot_influence([np.nan, np.nan])
    with pytest.raises(ValueError, match="infinite"):
        plot_influence([0.0, np.inf])
    with pytest.raises(NotFittedError):
        plot_influence(InfluenceFilter(LogisticRegression()))


def test_import_error_names_the_plot_extra(monkeypatch, scores):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"skinfluence\[plot\]"):
        plot_influence(scores)
    with pytest.raises(ImportError, match="plot"):
        plot_pruning_curve(
            {
                "param_prune_ratio": [0.0],
                "mean_test_score": [1.0],
                "std_test_score": [0.0],
            }
        )


# --------------------------------------------------------- plot_pruning_curve
def errorbar_data(ax, i=0):
    """(x, y) of the data line of the i-th errorbar container."""
    from matplotlib.container import ErrorbarContainer

    eb = [c for c in ax.containers if isinstance(c, ErrorbarContainer)][i]
    line = eb.lines[0]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float), eb


def errorbar_extent(eb, axis):
    """Half-lengths of the error bars (vertical: axis=1, horizontal: axis=0)."""
    segs = [seg for coll in eb.lines[2] for seg in coll.get_segments()]
    segs = [np.asarray(s) for s in segs]
    # vertical bars have equal x at both ends, horizontal ones equal y
    other = 0 if axis == 1 else 1
    picked = [s for s in segs if s[0, other] == s[1, other]]
    return np.array([abs(s[1, axis] - s[0, axis]) / 2 for s in picked])


@pytest.fixture(scope="module")
def search():
    X, y = make_classification(n_samples=240, n_informative=4, random_state=0)
    s = np.random.RandomState(0).choice(["p", "q"], size=len(y))
    with config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler(),
            InfluenceFilter(
                LogisticRegression(), objective="fairness", random_state=0
            ).set_fit_request(sensitive_features=True),
        )
        dp = make_scorer(
            demographic_parity_difference, greater_is_better=False
        ).set_score_request(sensitive_features=True)
        gs = GridSearchCV(
            pipe,
            {"influencefilter__prune_ratio": [0.1, 0.0, 0.05]},
            scoring={"accuracy": "accuracy", "neg_dp_gap": dp},
            refit=False,
            cv=StratifiedKFold(3, shuffle=True, random_state=0),
        ).fit(X, y, sensitive_features=s)
    return gs


def test_curve_from_a_grid_search_equals_cv_results(search):
    res = search.cv_results_
    order = np.argsort(np.asarray(res["param_influencefilter__prune_ratio"], float))
    ratios = np.asarray(res["param_influencefilter__prune_ratio"], float)[order]
    ax = plot_pruning_curve(search)
    x, y, eb = errorbar_data(ax, 0)
    assert_allclose(x, ratios)
    assert_allclose(y, res["mean_test_accuracy"][order])
    assert_allclose(errorbar_extent(eb, 1), res["std_test_accuracy"][order])
    # neg_dp_gap is shown as dp_gap, negated back
    x, y, eb = errorbar_data(ax, 1)
    assert_allclose(y, -res["mean_test_neg_dp_gap"][order])
    assert_allclose(errorbar_extent(eb, 1), res["std_test_neg_dp_gap"][order])
    assert legend_texts(ax) == ["accuracy", "dp_gap"]
    assert ax.get_xlabel() == "prune_ratio"


def test_curve_from_cv_results_dict_and_dataframe_agree(search):
    a = plot_pruning_curve(search.cv_results_, metrics=["accuracy"])
    b = plot_pruning_curve(pd.DataFrame(search.cv_results_), metrics="accuracy")
    assert_allclose(errorbar_data(a)[1], errorbar_data(b)[1])
    assert a.get_ylabel() == "accuracy (test)"
    assert a.get_legend() is None


def test_front_one_metric_against_another(search):
    res = search.cv_results_
    order = np.argsort(np.asarray(res["param_influencefilter__prune_ratio"], float))
    ax = plot_pruning_curve(search, x="neg_dp_gap", metrics=["accuracy"])
    x, y, eb = errorbar_data(ax)
    assert_allclose(x, -res["mean_test_neg_dp_gap"][order])
    assert_allclose(y, res["mean_test_accuracy"][order])
    assert_allclose(
        np.sort(errorbar_extent(eb, 0)), np.sort(res["std_test_neg_dp_gap"])
    )
    assert [t.get_text() for t in ax.texts] == ["0", "0.05", "0.1"]
    assert ax.get_xlabel() == "dp_gap (test)"
    assert ax.get_ylabel() == "accuracy (test)"


def test_by_splits_curves_and_duplicates_need_it():
    res = {
        "param_f__prune_ratio": np.ma.masked_array(
            [0.0, 0.1, 0.0, 0.1, 0.2], dtype=object
        ),
        "param_f__method": np.ma.masked_array(
            ["ip", "ip", "loss", "loss", "loss"], dtype=object
        ),
        "mean_test_score": np.array([0.8, 0.82, 0.8, 0.78, 0.75]),
        "std_test_score": np.array([0.01, 0.02, 0.01, 0.03, 0.02]),
    }
    ax = plot_pruning_curve(res, by="method")
    x0, y0, _ = errorbar_data(ax, 0)
    x1, y1, _ = errorbar_data(ax, 1)
    assert_allclose(x0, [0, 0.1])
    assert_allclose(y0, [0.8, 0.82])
    assert_allclose(x1, [0, 0.1, 0.2])
    assert_allclose(y1, [0.8, 0.78, 0.75])
    assert legend_texts(ax) == ["method=ip", "method=loss"]
    with pytest.raises(ValueError, match="by="):
        plot_pruning_curve(res)


def test_front_labels_skip_crowded_points():
    res = {
        "param_prune_ratio": [0.0, 0.01, 0.1, 0.2],
        "mean_test_accuracy": [0.85, 0.8501, 0.84, 0.80],
        "std_test_accuracy": np.zeros(4),
        "mean_test_gap": [0.2, 0.2001, 0.1, 0.02],
        "std_test_gap": np.zeros(4),
    }
    ax = plot_pruning_curve(res, x="gap", metrics="accuracy")
    assert [t.get_text() for t in ax.texts] == ["0", "0.1", "0.2"]
    assert_allclose(errorbar_data(ax)[0], res["mean_test_gap"])
    ax = plot_pruning_curve(res, x="gap", annotate=False)
    assert len(ax.texts) == 0


def test_non_numeric_prune_ratio_is_skipped_with_a_warning():
    res = {
        "param_prune_ratio": np.ma.masked_array([0.0, "negative", 0.1], dtype=object),
        "mean_test_score": np.array([0.8, 0.7, 0.82]),
        "std_test_score": np.zeros(3),
    }
    with pytest.warns(UserWarning, match="negative"):
        ax = plot_pruning_curve(res)
    assert_allclose(errorbar_data(ax)[1], [0.8, 0.82])


def test_curve_from_benchmark_runs_averages_over_seeds():
    rng = np.random.RandomState(0)
    rows = [
        dict(method=m, prune_ratio=r, seed=s, accuracy=rng.rand(), dp_gap=rng.rand())
        for m in ["ip", "random"]
        for r in [0.01, 0.05, 0.1]
        for s in range(5)
    ]
    runs = pd.DataFrame(rows)
    ax = plot_pruning_curve(runs, metrics=["dp_gap"], by="method")
    for i, method in enumerate(["ip", "random"]):
        x, y, eb = errorbar_data(ax, i)
        assert_allclose(x, [0.01, 0.05, 0.1])
        expect = [
            [
                r["dp_gap"]
                for r in rows
                if r["method"] == method and r["prune_ratio"] == p
            ]
            for p in [0.01, 0.05, 0.1]
        ]
        assert_allclose(y, [np.mean(v) for v in expect])
        assert_allclose(errorbar_extent(eb, 1), [np.std(v) for v in expect])
    # default metrics: the numeric columns but prune_ratio and seed
    ax = plot_pruning_curve(runs[runs.method == "ip"])
    assert legend_texts(ax) == ["accuracy", "dp_gap"]


def test_curve_from_the_cleaning_benchmark_table():
    """Its rows: one per run, the ratio in a column named ``ratio``."""
    rng = np.random.RandomState(1)
    rows = [
        dict(dataset="adult", seed=s, method="none", ratio=np.nan, test_dp=0.2)
        for s in range(3)
    ] + [
        dict(dataset="adult", seed=s, method=m, ratio=r, test_dp=rng.rand())
        for m in ["ip", "random"]
        for r in [0.01, 0.05]
        for s in range(3)
    ]
    runs = pd.DataFrame(rows)
    with pytest.warns(UserWarning, match="3 row"):
        ax = plot_pruning_curve(runs, ratio="ratio", metrics="test_dp", by="method")
    assert legend_texts(ax) == ["method=ip", "method=random"]
    x, y, _ = errorbar_data(ax, 1)
    assert_allclose(x, [0.01, 0.05])
    expect = [
        np.mean(
            [r["test_dp"] for r in rows if r["method"] == "random" and r["ratio"] == p]
        )
        for p in [0.01, 0.05]
    ]
    assert_allclose(y, expect)
    assert ax.get_xlabel() == "prune_ratio"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(metrics=["f1"]), "No metric"),
        (dict(x="f1"), "neither"),
        (dict(by="method"), "No column"),
    ],
)
def test_curve_bad_arguments(kwargs, match):
    res = {
        "param_prune_ratio": [0.0, 0.1],
        "mean_test_score": [1, 2],
        "std_test_score": [0, 0],
    }
    with pytest.raises(ValueError, match=match):
        plot_pruning_curve(res, **kwargs)


def test_curve_bad_results():
    with pytest.raises(TypeError, match="cv_results_"):
        plot_pruning_curve([1, 2, 3])
    with pytest.raises(ValueError, match="Several columns"):
        plot_pruning_curve(
            {
                "param_a__prune_ratio": [0.0],
                "param_b__prune_ratio": [0.0],
                "mean_test_score": [1.0],
                "std_test_score": [0.0],
            }
        )
