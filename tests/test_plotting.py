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

from skinfluence import InfluenceFilter, InfluenceSampler, compute_signals  # noqa: E402
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


# ---------------------------------------------- what the score axis is labelled
def test_plain_scores_keep_the_influence_label_and_label_overrides(scores):
    assert plot_influence(scores).get_xlabel() == (
        "influence score (higher = more beneficial)"
    )
    assert plot_influence(scores, label="my scores").get_xlabel() == "my scores"
    assert plot_influence(pd.Series(scores, name="tracin")).get_xlabel() == "tracin"


@pytest.fixture(scope="module")
def signal_table():
    X, y = make_classification(n_samples=200, random_state=2)
    clf = LogisticRegression().fit(X, y)
    df = compute_signals(clf, X, y, signals=["loss", "self_influence"])
    # the loss signal by hand: minus the log-probability of the given label
    loss = -np.log(clf.predict_proba(X)[np.arange(len(y)), y])
    return df, loss


def test_signal_column_is_labelled_larger_more_suspicious(signal_table):
    df, loss = signal_table
    assert_allclose(df["loss"], loss, rtol=1e-6, atol=1e-9)
    suspicious = np.argsort(loss)[-10:]  # what a user removes: the largest
    ax = plot_influence(df["loss"], removed=suspicious, bins=20)
    assert ax.get_xlabel() == "'loss' signal (larger = more suspicious)"
    edges = np.histogram_bin_edges(loss, bins=20)
    assert_array_equal(heights(bar_containers(ax)[0]), np.histogram(loss, edges)[0])
    # the removed rows are the highest: the threshold is their lowest value
    assert vlines_x(ax) == [pytest.approx(np.sort(loss)[-10])]
    # a one-column DataFrame is its column
    one = plot_influence(df[["self_influence"]], bins=20)
    assert one.get_xlabel() == "'self_influence' signal (larger = more suspicious)"
    assert heights(bar_containers(one)[0]).sum() == len(df)
    with pytest.raises(ValueError, match=r"2 columns.*scores\['loss'\]"):
        plot_influence(df)


def test_filter_with_a_signal_method_says_minus_the_signal():
    X, y = make_classification(n_samples=300, random_state=0)
    flt = InfluenceFilter(
        LogisticRegression(), method="signal_loss", prune_ratio=0.1, random_state=0
    ).fit(X, y)
    ax = plot_influence(flt)
    assert ax.get_xlabel() == (
        "minus the 'loss' signal, method='signal_loss' (higher = more beneficial)"
    )
    # the label's claim: the scores are minus the training loss of the model
    # fitted on the training rows, so the removed (lowest) are the largest losses
    train = np.setdiff1d(np.arange(len(y)), flt.validation_indices_)
    clf = LogisticRegression().fit(X[train], y[train])
    loss = -np.log(clf.predict_proba(X[train])[np.arange(len(train)), y[train]])
    assert_allclose(flt.influence_[train], -loss, atol=1e-8)
    worst = train[np.argsort(loss)[-len(flt.removed_indices_) :]]
    assert_array_equal(np.sort(worst), flt.removed_indices_)
    assert vlines_x(ax) == [pytest.approx(-np.sort(loss)[-len(worst)])]


def test_filter_labels_name_the_method_and_the_relabel_effect():
    X, y = make_classification(n_samples=200, random_state=0)
    ip = InfluenceFilter(LogisticRegression(), prune_ratio=0.1, random_state=0)
    assert plot_influence(ip.fit(X, y)).get_xlabel() == (
        "influence score, method='ip' (higher = more beneficial)"
    )
    relabel = InfluenceFilter(
        LogisticRegression(), action="relabel", prune_ratio=0.1, random_state=0
    ).fit(X, y)
    assert plot_influence(relabel).get_xlabel() == (
        "effect of the best label change, method='ip' (negative = the change helps)"
    )


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
    # neg_dp_gap is shown as dp_gap, negated back, on a second y-axis
    gap_ax = twin_of(ax)
    x, y, eb = errorbar_data(gap_ax, 0)
    assert_allclose(y, -res["mean_test_neg_dp_gap"][order])
    assert_allclose(errorbar_extent(eb, 1), res["std_test_neg_dp_gap"][order])
    assert legend_texts(ax) == ["accuracy", "dp_gap"]
    assert ax.get_xlabel() == "prune_ratio"


def twin_of(ax):
    """The other Axes at ``ax``'s position, sharing its x-axis."""
    (other,) = [a for a in ax.figure.axes if a is not ax]
    assert other.get_position().bounds == ax.get_position().bounds
    assert other.get_shared_x_axes().joined(ax, other)
    return other


def snug(ylim, mean, std):
    """Whether the y-limits hold the error bars with no more than 25% slack."""
    lo, hi = np.min(mean - std), np.max(mean + std)
    return ylim[0] <= lo and hi <= ylim[1] and (ylim[1] - ylim[0]) < 1.25 * (hi - lo)


def test_accuracy_and_gap_each_use_their_own_scale(search):
    res = search.cv_results_
    acc = np.asarray(res["mean_test_accuracy"], float)
    acc_std = np.asarray(res["std_test_accuracy"], float)
    gap = -np.asarray(res["mean_test_neg_dp_gap"], float)
    gap_std = np.asarray(res["std_test_neg_dp_gap"], float)
    assert gap.min() > 0 and np.ptp(acc) > 0 and np.ptp(gap) > 0
    ax = plot_pruning_curve(search)
    gap_ax = twin_of(ax)
    assert ax.get_ylabel() == "accuracy (test)"
    assert gap_ax.get_ylabel() == "dp_gap (test)"
    # each axis spans its own data (error bars included): no flat curves
    assert snug(ax.get_ylim(), acc, acc_std)
    assert snug(gap_ax.get_ylim(), gap, gap_std)
    assert gap_ax.get_ylim()[0] > -gap.min()  # shown positive
    assert [line.get_linestyle() for line in gap_ax.lines[:1]] == ["--"]
    # the legend, drawn above the twin, names both lines in different colours
    assert ax.get_zorder() > gap_ax.get_zorder()
    assert legend_texts(ax) == ["accuracy", "dp_gap"]
    assert ax.lines[0].get_color() != gap_ax.lines[0].get_color()
    # one axis when asked: both lines on it, the gap still shown positive,
    # and then neither fills its axis
    one = plot_pruning_curve(search, twin=False)
    assert one.figure.axes == [one]
    order = np.argsort(np.asarray(res["param_influencefilter__prune_ratio"], float))
    assert_allclose(errorbar_data(one, 0)[1], acc[order])
    assert_allclose(errorbar_data(one, 1)[1], gap[order])
    assert not snug(one.get_ylim(), acc, acc_std)
    assert one.get_ylabel() == "test value"


@pytest.mark.parametrize(
    ("name", "values", "shown", "label"),
    [
        # a negated fairness scorer, whatever its name: shown positive, a gap
        ("fairness", [-0.17, -0.12, -0.05], [0.17, 0.12, 0.05], "fairness gap"),
        ("dp", [-0.17, -0.12, -0.05], [0.17, 0.12, 0.05], "dp gap"),
        (
            "neg_eo_difference",
            [-0.2, -0.1, -0.05],
            [0.2, 0.1, 0.05],
            "eo_difference gap",
        ),
        # a gap that is already positive stays as it is
        ("dp_gap", [0.17, 0.12, 0.05], [0.17, 0.12, 0.05], "dp_gap"),
        # scikit-learn's negated loss, and any other all-negative score
        ("neg_log_loss", [-0.4, -0.35, -0.3], [0.4, 0.35, 0.3], "log_loss"),
        ("custom", [-3.0, -2.0, -1.0], [3.0, 2.0, 1.0], "-custom"),
    ],
)
def test_gaps_and_losses_are_shown_positive_on_the_second_axis(
    name, values, shown, label
):
    res = {
        "param_prune_ratio": [0.0, 0.05, 0.1],
        "mean_test_accuracy": [0.85, 0.84, 0.83],
        "std_test_accuracy": np.zeros(3),
        f"mean_test_{name}": values,
        f"std_test_{name}": [0.01, 0.01, 0.01],
    }
    ax = plot_pruning_curve(res)
    other = twin_of(ax)
    assert_allclose(errorbar_data(other)[1], shown)
    assert other.get_ylabel() == f"{label} (test)"
    assert legend_texts(ax) == ["accuracy", label]
    assert_allclose(errorbar_data(ax)[1], [0.85, 0.84, 0.83])


def test_one_kind_of_metric_stays_on_one_axis():
    res = {
        "param_prune_ratio": [0.0, 0.1],
        "mean_test_accuracy": [0.85, 0.83],
        "std_test_accuracy": [0.0, 0.0],
        "mean_test_f1": [0.7, 0.68],
        "std_test_f1": [0.0, 0.0],
    }
    ax = plot_pruning_curve(res)
    assert len(ax.figure.axes) == 1
    assert ax.get_ylabel() == "test score"
    gaps = {
        "param_prune_ratio": [0.0, 0.1],
        "mean_test_neg_dp_gap": [-0.2, -0.1],
        "std_test_neg_dp_gap": [0.0, 0.0],
        "mean_test_neg_eo_gap": [-0.3, -0.2],
        "std_test_neg_eo_gap": [0.0, 0.0],
    }
    ax = plot_pruning_curve(gaps)
    assert len(ax.figure.axes) == 1
    assert ax.get_ylabel() == "gap (test)"
    assert_allclose(errorbar_data(ax, 1)[1], [0.3, 0.2])


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
    # default metrics: the numeric columns but prune_ratio and seed; the gap
    # on its own axis
    ax = plot_pruning_curve(runs[runs.method == "ip"])
    assert legend_texts(ax) == ["accuracy", "dp_gap"]
    assert twin_of(ax).get_ylabel() == "dp_gap (test)"


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
