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

from skinfluence import (
    InfluenceFilter,
    InfluenceFunction,
    InfluenceSampler,
    compute_influence,
)
from skinfluence._actions import n_prune, removal_floor, round_plan, solve_constrained
from skinfluence._compute import relabel_influence
from skinfluence.baselines import reweighing_weights
from skinfluence.methods import Method
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
    # undamped: the model's own L2 penalty makes the Hessian positive definite
    method = InfluenceFunction(damping=0.0)
    s = relabel_influence(clf, X, y, Xv, yv, classes=[0, 1], method=method)
    rows = np.arange(len(y))
    predicted = (s[y, rows] - s[1 - y, rows]) / len(y)  # change of the validation loss

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
def _vertex_search(t, u, k, floor=None):
    """min t.d s.t. u.d <= 0, sum d <= k, t.d >= floor, 0 <= d <= 1, over every
    vertex: each set of free entries (at most as many as constraints) solved
    on each set of active constraints, for every 0/1 value of the others."""
    n, best = len(t), np.inf
    cons, rhs = [u, np.ones(n)], [0.0, float(k)]
    if floor is not None:
        cons, rhs = cons + [-t], rhs + [-floor]
    cons, rhs = np.vstack(cons), np.array(rhs)
    for m in range(len(rhs) + 1):
        for free in itertools.combinations(range(n), m):
            fixed = [i for i in range(n) if i not in free]
            D = np.zeros((2 ** len(fixed), n))  # every 0/1 value of the fixed
            D[:, fixed] = list(itertools.product((0.0, 1.0), repeat=len(fixed)))
            for active in itertools.combinations(range(len(rhs)), m):
                d = D.copy()
                if free:
                    A = cons[list(active)][:, list(free)]
                    if abs(np.linalg.det(A)) < 1e-12:
                        continue
                    b = rhs[list(active)][:, None] - cons[list(active)] @ D.T
                    d[:, list(free)] = np.linalg.solve(A, b).T
                ok = (
                    np.all(d >= -1e-9, axis=1) & np.all(d <= 1 + 1e-9, axis=1)
                    & np.all(d @ cons.T <= rhs + 1e-9, axis=1)
                )
                if ok.any():
                    best = min(best, (d[ok] @ t).min())
    return best


def _subset_search(t, u, k, floor=None):
    """The best 0/1 plan, by trying every subset of rows."""
    best = 0.0
    for m in range(min(k, len(t)) + 1):
        for rows in itertools.combinations(range(len(t)), m):
            rows = list(rows)
            if u[rows].sum() <= 0 and (floor is None or t[rows].sum() >= floor):
                best = min(best, t[rows].sum())
    return best


def _dp_gap(clf, Xv, sv):
    """The soft demographic-parity gap: |mean p(y=1)| between the two groups."""
    p = clf.predict_proba(Xv)[:, 1]
    return abs(p[sv == 0].mean() - p[sv == 1].mean())


def _fair_scores(n, seed):
    X, y, s, Xv, yv, sv = _data(n=n, seed=seed)
    clf = LogisticRegression().fit(X, y)
    t = compute_influence(clf, X, y, Xv, yv, objective=Fairness(), sensitive_features_val=sv)
    u = compute_influence(clf, X, y, Xv, yv)
    return (X, y, Xv, yv, sv), t, u, -len(y) * _dp_gap(clf, Xv, sv)


def test_the_constrained_weights_solve_the_linear_program_exactly():
    (X, y, Xv, yv, sv), t, u, floor = _fair_scores(10, 5)
    fairness = Fairness(metric="demographic_parity")
    flt = InfluenceFilter(
        LogisticRegression(), objective=fairness, action="reweight",
        constraint="utility", rounds=1, prune_ratio=0.3, random_state=0,
    ).fit(X, y, X_val=Xv, y_val=yv, sensitive_features_val=sv)
    delta = 1.0 - flt.sample_weight_
    k = 3
    assert np.all((delta >= 0) & (delta <= 1))
    assert delta.sum() <= k + 1e-9
    assert u @ delta <= 1e-9 * np.abs(u).sum()
    assert t @ delta >= floor - 1e-9 * np.abs(t).sum()
    assert_allclose(t @ delta, _vertex_search(t, u, k, floor), rtol=1e-6, atol=1e-12)
    # the reweighted refit is scikit-learn's own fit with those weights
    mask = flt.sample_weight_ > 0
    ref = LogisticRegression().fit(X[mask], y[mask], sample_weight=flt.sample_weight_[mask])
    assert_allclose(flt.estimator_.coef_, ref.coef_, rtol=1e-8)


@pytest.mark.parametrize("action", ["reweight", "remove"])
def test_the_plan_stops_at_a_zero_gap(action):
    # here the program without a floor plans a predicted change of the gap
    # larger than the gap (J = 0.031 on 10 rows: floor -0.31; unfloored -0.56)
    (X, y, Xv, yv, sv), t, u, floor = _fair_scores(10, 11)
    k = 3
    assert _vertex_search(t, u, k) < floor - 0.1
    flt = InfluenceFilter(
        LogisticRegression(), objective=Fairness(), action=action,
        constraint="utility", rounds=1, prune_ratio=0.3, random_state=0,
    ).fit(X, y, X_val=Xv, y_val=yv, sensitive_features_val=sv)
    delta = 1.0 - flt.sample_weight_
    assert delta.sum() <= k + 1e-9 and u @ delta <= 1e-9 * np.abs(u).sum()
    assert t @ delta >= floor - 1e-9 * np.abs(t).sum()  # predicted gap >= 0
    if action == "reweight":  # the program's optimum, with the floor
        assert_allclose(t @ delta, _vertex_search(t, u, k, floor), rtol=1e-6)
    else:
        assert set(np.unique(delta)) <= {0.0, 1.0}
        assert t @ delta < 0 and t @ delta >= _subset_search(t, u, k, floor)


def _old_rounding(delta):
    return (delta >= 0.5).astype(float)


@pytest.mark.parametrize(
    "t, u, k, floor, broken",
    [
        # delta = (2/3, 1/3): rounding at 1/2 keeps row 0 alone, u = 1 > 0
        ([-1.0, -0.5], [1.0, -2.0], 1, None, "constraint"),
        # delta = (1/2, 1/2): rounding at 1/2 takes both rows, over k = 1
        ([-1.0, -0.9], [1.0, -1.0], 1, None, "budget"),
        # delta = (1, 1/3): no floor, both rows: -6, past the floor -4
        ([-3.0, -3.0, 1.0], [-1.0, -1.0, 0.0], 2, -4.0, "floor"),
        # ties: equal effects, the budget binds on equal rows
        ([-1.0, -1.0, -1.0, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], 2, None, None),
        ([-2.0, -2.0, -2.0, 1.0], [1.0, 1.0, -1.0, -1.0], 3, -5.0, None),
    ],
)
def test_rounding_keeps_budget_constraint_and_floor(t, u, k, floor, broken):
    t, u = np.array(t), np.array(u)
    delta = solve_constrained(t, u, k, floor=floor)
    assert_allclose(t @ delta, _vertex_search(t, u, k, floor), atol=1e-9)
    plan = round_plan(delta, t, u, k, floor=floor)
    on = plan > 0
    assert set(np.unique(plan)) <= {0.0, 1.0}
    assert on.sum() <= k and u[on].sum() <= 0
    assert floor is None or t[on].sum() >= floor
    assert t[on].sum() == _subset_search(t, u, k, floor)  # the best 0/1 plan here
    old = _old_rounding(solve_constrained(t, u, k)) > 0  # no floor, rounded at 1/2
    checks = {
        "budget": old.sum() <= k,
        "constraint": u[old].sum() <= 0,
        "floor": floor is None or t[old].sum() >= floor,
    }
    if broken is not None:  # the rule this replaces broke it
        assert not checks[broken]


def test_rounding_against_exhaustive_search_on_tiny_problems():
    rng = np.random.default_rng(0)
    exact = trials = 0
    for _ in range(400):
        n = int(rng.integers(2, 8))
        # small integers: many ties, and exact sums
        t = rng.integers(-4, 3, n).astype(float)
        u = rng.integers(-3, 4, n).astype(float)
        k = int(rng.integers(1, n + 1))
        floor = None if rng.random() < 0.3 else -float(rng.integers(0, 8))
        delta = solve_constrained(t, u, k, floor=floor)
        plan = round_plan(delta, t, u, k, floor=floor) > 0
        best = _subset_search(t, u, k, floor)
        # the program is a relaxation: its value is at most the best 0/1 plan
        assert t @ delta <= best + 1e-7
        assert plan.sum() <= k and u[plan].sum() <= 0
        assert floor is None or t[plan].sum() >= floor
        integral = np.all(np.minimum(delta, 1 - delta) < 1e-9)
        if integral:  # an integral optimum is the best 0/1 plan
            assert t[plan].sum() == best
        exact += t[plan].sum() == best
        trials += 1
    assert exact / trials >= 0.8  # measured: 0.86 of 3000 such problems


def test_removal_floor_scales_the_value_by_the_rows():
    assert removal_floor(0.05, 200) == -10.0
    assert removal_floor(-1e-18, 10) == 0.0  # a zero gap: nothing may lower it
    assert n_prune(0.07, 100) == 7 and n_prune(0.1, 55) == 5


class _FixedScores(Method):
    """Scores given in advance, one per training row (a test double)."""

    _key = "fixed_scores_test"
    needs_objective = False

    def __init__(self, scores=None):
        self.scores = scores

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        return torch.as_tensor(self.scores, dtype=torch.float64)


def test_unconstrained_reweighting_ramps_the_lowest_scores():
    X, y, _, Xv, yv, _ = _data(n=10)
    scores = [0.5, -2.0, 0.1, -1.0, 0.3, 0.0, 0.7, -0.5, 0.9, 0.2]
    flt = InfluenceFilter(
        LogisticRegression(), method=_FixedScores(scores), action="reweight",
        prune_ratio=0.3, random_state=0,
    ).fit(X, y, X_val=Xv, y_val=yv)
    # by hand: k = floor(0.3 * 10) = 3 rows, the lowest scores -2.0 (row 1),
    # -1.0 (row 3), -0.5 (row 7); the 4th lowest, 0.0 (row 5), is the edge.
    # Weight 1 - (edge - s) / (edge - lowest), edge - lowest = 0 - (-2) = 2:
    # row 1: 1 - 2/2 = 0; row 3: 1 - 1/2 = 0.5; row 7: 1 - 0.5/2 = 0.75
    expected = [1.0, 0.0, 1.0, 0.5, 1.0, 1.0, 1.0, 0.75, 1.0, 1.0]
    assert_allclose(flt.sample_weight_, expected, rtol=0, atol=1e-15)
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


def _best_subset(t, u, k, floor):
    """Brute force: the rows S, |S| <= k, of least sum t with sum u <= 0 and sum t >= floor."""
    best, best_sum = [], 0.0
    for size in range(1, k + 1):
        for S in map(list, itertools.combinations(range(len(t)), size)):
            if u[S].sum() <= 0 and floor <= t[S].sum() < best_sum:
                best, best_sum = S, t[S].sum()
    return best


def test_auto_is_the_utility_constraint_and_three_rounds_under_fairness():
    X, y, s, Xv, yv, sv = _data(n=30, seed=2)
    fit = dict(X_val=Xv, y_val=yv, sensitive_features_val=sv)
    auto = InfluenceFilter(
        LogisticRegression(), objective=Fairness(), prune_ratio=0.2, random_state=0
    ).fit(X, y, **fit)
    assert isinstance(auto.constraint_, Utility) and auto.rounds_ == 3
    # by hand: floor(0.2 * 30) = 6 rows in three rounds of 2; each round refits
    # on the rows left and removes the best pair or single row by exhaustive
    # search: least summed fairness effect t, summed utility effect u <= 0,
    # and t's sum at least -n J (J the soft DP gap |mean p(s=0) - mean p(s=1)|).
    # On this problem the constraint binds (without it row 28 goes, not 29) and
    # the rounds matter (one round of 6 removes rows 5 and 27). The program's
    # rounded plan is the exhaustive optimum here; with _data(n=30, seed=1, 3
    # or 5) it is not (its rounding keeps a worse pair)
    kept = np.arange(len(y))
    for _ in range(3):
        clf = LogisticRegression().fit(X[kept], y[kept])
        t = compute_influence(clf, X[kept], y[kept], Xv, yv, objective=Fairness(),
                              sensitive_features_val=sv)
        u = compute_influence(clf, X[kept], y[kept], Xv, yv)
        p = clf.predict_proba(Xv)[:, 1]
        J = abs(p[sv == 0].mean() - p[sv == 1].mean())
        kept = np.delete(kept, _best_subset(t, u, 2, -len(kept) * J))
    assert len(kept) == 24  # a pair found in every round (rows 12 15 20 22 24 29)
    assert_array_equal(auto.removed_indices_, np.setdiff1d(np.arange(30), kept))
    X, y, s, Xv, yv, sv = _data()
    fit = dict(X_val=Xv, y_val=yv, sensitive_features_val=sv)
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
