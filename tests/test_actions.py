"""action="remove" | "reweight" | "relabel", constraint= and rounds= (issue 8),
checked against brute force, exhaustive search and scikit-learn's own fits."""

import itertools

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetClassifier

from skinfluence import InfluenceFilter, InfluenceSampler, compute_influence
from skinfluence.baselines import reweighing_weights
from skinfluence.models import with_sample_weight
from skinfluence.objectives import Fairness, Utility


def _data(n=120, seed=0):
    X, y = make_classification(
        n_samples=n + 60, n_features=4, n_informative=3, n_redundant=0,
        flip_y=0.1, random_state=seed,
    )
    s = np.random.default_rng(seed).integers(0, 2, size=len(y))
    return X[:n], y[:n], s[:n], X[n:], y[n:], s[n:]


def _row_grad(clf, x, label):
    """Gradient of the log-loss of one row for LogisticRegression (w, b)."""
    p = 1 / (1 + np.exp(-(x @ clf.coef_.ravel() + clf.intercept_[0])))
    return (p - label) * np.r_[x, 1.0]


# ------------------------------------------------------------------ relabel
def test_relabel_scores_equal_brute_force_gradient_differences():
    X, y, _, Xv, yv, _ = _data()
    clf = LogisticRegression().fit(X, y)
    g_val = np.mean([_row_grad(clf, x, t) for x, t in zip(Xv, yv)], axis=0)
    flipped = 1 - y
    brute = np.array(
        [
            g_val @ (_row_grad(clf, x, c) - _row_grad(clf, x, t))
            for x, t, c in zip(X, y, flipped)
        ]
    )
    ours = compute_influence(clf, X, flipped, Xv, yv) - compute_influence(
        clf, X, y, Xv, yv
    )
    assert_allclose(ours, brute, rtol=1e-8, atol=1e-12)
    # the filter reports the effect of the best change on J, s(y) - s(c)
    flt = InfluenceFilter(
        LogisticRegression(), action="relabel", prune_ratio=0.1, random_state=0
    ).fit(X, y, X_val=Xv, y_val=yv)
    assert_allclose(flt.influence_, -brute, rtol=1e-8, atol=1e-12)
    # it relabels the rows whose change helps most, and refits on the new labels
    k = int(0.1 * len(y))
    expected = np.sort(np.argsort(-brute, kind="stable")[:k])
    expected = expected[brute[expected] > 0]
    assert_array_equal(flt.relabeled_indices_, expected)
    y_new = y.copy()
    y_new[expected] = 1 - y_new[expected]
    assert_array_equal(flt.y_fit_, y_new)
    ref = LogisticRegression().fit(X, y_new)
    assert_allclose(flt.estimator_.coef_, ref.coef_, rtol=1e-10)


def test_relabel_effects_predict_real_refits_on_a_convex_problem():
    X, y, _, Xv, yv, _ = _data(n=80, seed=3)
    clf = LogisticRegression(C=1.0).fit(X, y)
    method = "influence_function"
    s_y = compute_influence(clf, X, y, Xv, yv, method=method)
    s_c = compute_influence(clf, X, 1 - y, Xv, yv, method=method)
    predicted = (s_y - s_c) / len(y)  # change of the validation loss

    def val_loss(model):
        p = model.predict_proba(Xv)[np.arange(len(yv)), yv]
        return -np.mean(np.log(p))

    base = val_loss(clf)
    rows = np.argsort(predicted)[:: len(y) // 20]
    actual = []
    for i in rows:
        y_i = y.copy()
        y_i[i] = 1 - y_i[i]
        actual.append(val_loss(LogisticRegression(C=1.0).fit(X, y_i)) - base)
    assert spearmanr(predicted[rows], actual).statistic > 0.95


# -------------------------------------------------------------- constraint
def _vertex_search(t, u, k):
    """min t.d s.t. u.d <= 0, sum d <= k, 0 <= d <= 1, over every vertex."""
    n, best = len(t), np.inf
    cons = np.vstack([u, np.ones(n)])
    rhs = np.array([0.0, float(k)])
    for free in itertools.chain.from_iterable(
        itertools.combinations(range(n), m) for m in range(3)
    ):
        fixed = [i for i in range(n) if i not in free]
        for values in itertools.product((0.0, 1.0), repeat=len(fixed)):
            d = np.zeros(n)
            d[fixed] = values
            rows_sets = [()] if not free else itertools.combinations(range(2), len(free))
            for active in rows_sets:
                if free:
                    A = cons[list(active)][:, list(free)]
                    b = rhs[list(active)] - cons[list(active)] @ d
                    try:
                        d[list(free)] = np.linalg.solve(A, b)
                    except np.linalg.LinAlgError:
                        continue
                if (
                    np.all(d >= -1e-9) and np.all(d <= 1 + 1e-9)
                    and np.all(cons @ d <= rhs + 1e-9)
                ):
                    best = min(best, t @ d)
    return best


def test_the_constrained_weights_solve_the_linear_program_exactly():
    X, y, s, Xv, yv, sv = _data(n=10, seed=5)
    fairness = Fairness(metric="demographic_parity")
    flt = InfluenceFilter(
        LogisticRegression(), objective=fairness, action="reweight",
        constraint="utility", rounds=1, prune_ratio=0.3, random_state=0,
    ).fit(X, y, X_val=Xv, y_val=yv, sensitive_features_val=sv)
    clf = LogisticRegression().fit(X, y)
    t = compute_influence(clf, X, y, Xv, yv, objective=fairness,
                          sensitive_features_val=sv)
    u = compute_influence(clf, X, y, Xv, yv)
    delta = 1.0 - flt.sample_weight_
    k = 3
    assert np.all((delta >= 0) & (delta <= 1))
    assert delta.sum() <= k + 1e-9
    assert u @ delta <= 1e-9 * np.abs(u).sum()
    assert_allclose(t @ delta, _vertex_search(t, u, k), rtol=1e-6, atol=1e-12)
    # the reweighted refit is scikit-learn's own fit with those weights
    mask = flt.sample_weight_ > 0
    ref = LogisticRegression().fit(X[mask], y[mask], sample_weight=flt.sample_weight_[mask])
    assert_allclose(flt.estimator_.coef_, ref.coef_, rtol=1e-8)


def test_unconstrained_reweighting_ramps_the_lowest_scores():
    X, y, _, Xv, yv, _ = _data()
    flt = InfluenceFilter(
        LogisticRegression(), action="reweight", prune_ratio=0.1, random_state=0
    ).fit(X, y, X_val=Xv, y_val=yv)
    scores = compute_influence(LogisticRegression().fit(X, y), X, y, Xv, yv)
    order = np.argsort(scores, kind="stable")
    k = int(0.1 * len(y))
    low, edge = scores[order[:k]], scores[order[k]]
    expected = np.ones(len(y))
    expected[order[:k]] = 1 - (edge - low) / (edge - low.min())
    assert_allclose(flt.sample_weight_, expected, rtol=1e-10, atol=1e-12)
    ref = LogisticRegression().fit(X, y, sample_weight=expected)
    assert_allclose(flt.estimator_.coef_, ref.coef_, rtol=1e-8)


# ------------------------------------------------------------------- rounds
def test_rounds_refit_and_rescore_between_rounds():
    X, y, _, Xv, yv, _ = _data()
    flt = InfluenceFilter(
        LogisticRegression(), prune_ratio=0.1, rounds=2, random_state=0
    ).fit(X, y, X_val=Xv, y_val=yv)
    # by hand: 6 lowest, refit on the rest, 6 lowest of the new scores
    keep = np.arange(len(y))
    clf = LogisticRegression().fit(X, y)
    s1 = compute_influence(clf, X, y, Xv, yv)
    first = np.argsort(s1, kind="stable")[:6]
    keep = np.setdiff1d(keep, first)
    clf2 = LogisticRegression().fit(X[keep], y[keep])
    s2 = compute_influence(clf2, X[keep], y[keep], Xv, yv)
    second = keep[np.argsort(s2, kind="stable")[:6]]
    assert_array_equal(flt.removed_indices_, np.sort(np.r_[first, second]))
    assert_allclose(flt.influence_[keep], s2, rtol=1e-10)
    assert_allclose(flt.influence_[first], s1[first], rtol=1e-10)


def test_auto_is_the_utility_constraint_and_three_rounds_under_fairness():
    X, y, s, Xv, yv, sv = _data()
    fit = dict(X_val=Xv, y_val=yv, sensitive_features_val=sv)
    auto = InfluenceFilter(
        LogisticRegression(), objective=Fairness(), prune_ratio=0.1, random_state=0
    ).fit(X, y, **fit)
    assert isinstance(auto.constraint_, Utility) and auto.rounds_ == 3
    explicit = InfluenceFilter(
        LogisticRegression(), objective=Fairness(), prune_ratio=0.1,
        constraint="utility", rounds=3, random_state=0,
    ).fit(X, y, **fit)
    assert_array_equal(auto.removed_indices_, explicit.removed_indices_)
    assert_array_equal(auto.influence_, explicit.influence_)
    # any other objective: no constraint, one round (the lowest 10% removed)
    plain = InfluenceFilter(LogisticRegression(), prune_ratio=0.1, random_state=0)
    plain.fit(X, y, X_val=Xv, y_val=yv)
    assert plain.constraint_ is None and plain.rounds_ == 1
    scores = compute_influence(LogisticRegression().fit(X, y), X, y, Xv, yv)
    lowest = np.sort(np.argsort(scores, kind="stable")[:12])
    assert_array_equal(plain.removed_indices_, lowest)
    # a method that measures no objective: "auto" asks for no constraint
    rand = InfluenceFilter(
        LogisticRegression(), objective=Fairness(), method="random",
        prune_ratio=0.1, random_state=0,
    ).fit(X, y, **fit)
    assert rand.constraint_ is None and rand.rounds_ == 1
    # prune_ratio="negative" has no fraction to spread: one round
    neg = InfluenceFilter(
        LogisticRegression(), objective=Fairness(), prune_ratio="negative",
        random_state=0,
    ).fit(X, y, **fit)
    assert isinstance(neg.constraint_, Utility) and neg.rounds_ == 1


def test_rounds_that_would_change_nothing_are_skipped():
    X, y, _, Xv, yv, _ = _data()
    NoWeightLR.fits = 0
    flt = InfluenceFilter(NoWeightLR(), prune_ratio=0, rounds=3, random_state=0)
    flt.fit(X, y, X_val=Xv, y_val=yv)
    # one round's fit, kept as the final model (nothing acted on); not 3 fits
    assert NoWeightLR.fits == 1
    assert flt.rounds_ == 3 and len(flt.removed_indices_) == 0
    ref = LogisticRegression().fit(X, y)
    assert_allclose(flt.estimator_.coef_, ref.coef_, rtol=1e-10)


# ------------------------------------------------------------ skorch weights
def test_a_weighted_skorch_net_minimises_the_weighted_mean_loss():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    w = rng.uniform(size=32)
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    net = NeuralNetClassifier(
        module, criterion=torch.nn.CrossEntropyLoss, max_epochs=1, lr=0.0,
        batch_size=32, train_split=None, verbose=0,
    )
    weighted = with_sample_weight(net)
    assert not hasattr(net, "module_")  # the user's net is untouched
    weighted.fit(X, y, sample_weight=w)
    with torch.no_grad():
        logits = module(torch.as_tensor(X))
        rows = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y), reduction="none")
    expected = float(np.mean(w * rows.numpy()))
    assert_allclose(weighted.history[-1, "train_loss"], expected, rtol=1e-6)
    assert_array_equal(weighted.predict(X), logits.argmax(1).numpy())


# --------------------------------------------------------- Kamiran-Calders
def test_reweighing_weights_follow_the_published_formula():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=200)
    s = rng.choice(["f", "m", "x"], size=200, p=[0.3, 0.6, 0.1])
    w = reweighing_weights(y, sensitive_features=s)
    for g in np.unique(s):
        for c in (0, 1):
            cell = (s == g) & (y == c)
            expected = np.mean(s == g) * np.mean(y == c) / np.mean(cell)
            assert_allclose(w[cell], expected)
    # weighted, every group has the overall label distribution
    for g in np.unique(s):
        grp = s == g
        assert_allclose(np.sum(w[grp] * y[grp]) / np.sum(w[grp]), y.mean())


def test_reweighing_weights_equal_aif360s():
    pytest.importorskip("aif360")
    pd = pytest.importorskip("pandas")
    from aif360.algorithms.preprocessing import Reweighing
    from aif360.datasets import BinaryLabelDataset

    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {"x": rng.normal(size=60), "s": rng.integers(0, 2, 60), "y": rng.integers(0, 2, 60)}
    ).astype(float)
    data = BinaryLabelDataset(df=frame, label_names=["y"], protected_attribute_names=["s"])
    out = Reweighing([{"s": 0.0}], [{"s": 1.0}]).fit_transform(data)
    assert_allclose(
        reweighing_weights(frame["y"], sensitive_features=frame["s"]),
        out.instance_weights,
    )


# --------------------------------------------------------------- bad input
class NoWeightLR(LogisticRegression):
    """A LogisticRegression whose fit takes no sample_weight."""

    fits = 0

    def fit(self, X, y):
        NoWeightLR.fits += 1
        return super().fit(X, y)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"action": "drop"}, ValueError, "action"),
        ({"constraint": 3}, ValueError, "constraint"),
        ({"constraint": "nonsense"}, ValueError, "Unknown objective 'nonsense'"),
        ({"rounds": 0}, ValueError, "rounds"),
        ({"rounds": "many"}, ValueError, "rounds"),
        ({"rounds": 2, "prune_ratio": "negative"}, ValueError, "rounds > 1"),
        ({"constraint": "utility", "method": "loss"}, ValueError, "measures none"),
        ({"constraint": "fairness"}, ValueError, "sensitive_features"),
    ],
)
def test_bad_action_constraint_or_rounds_fail_before_training(params, error, match):
    X, y, *_ = _data()
    NoWeightLR.fits = 0
    X0, y0 = X.copy(), y.copy()
    with pytest.raises(error, match=match):
        InfluenceFilter(NoWeightLR(), **params).fit(X, y)
    assert NoWeightLR.fits == 0
    assert_array_equal(X, X0) and assert_array_equal(y, y0)


def test_reweighting_an_estimator_without_sample_weight_fails_before_training():
    X, y, *_ = _data()
    NoWeightLR.fits = 0
    est = NoWeightLR()
    with pytest.raises(ValueError, match="NoWeightLR.fit does not"):
        InfluenceFilter(est, action="reweight").fit(X, y)
    assert NoWeightLR.fits == 0 and not hasattr(est, "coef_")


def test_the_sampler_cannot_reweight_but_can_relabel():
    X, y, _, Xv, yv, _ = _data()
    with pytest.raises(ValueError, match="cannot reweight"):
        InfluenceSampler(LogisticRegression(), action="reweight").fit_resample(X, y)
    sampler = InfluenceSampler(
        LogisticRegression(), action="relabel", prune_ratio=0.1, random_state=0
    )
    X_res, y_res = sampler.fit_resample(X, y, X_val=Xv, y_val=yv)
    flt = InfluenceFilter(
        clone(LogisticRegression()), action="relabel", prune_ratio=0.1, random_state=0
    ).fit(X, y, X_val=Xv, y_val=yv)
    assert_array_equal(sampler.relabeled_indices_, flt.relabeled_indices_)
    assert_array_equal(y_res, flt.y_fit_)
