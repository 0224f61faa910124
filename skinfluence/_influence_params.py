"""Parameters shared by InfluenceFilter and InfluenceSampler: docs and constraints."""

from __future__ import annotations

from numbers import Integral, Real

from ._actions import ACTIONS
from ._sklearn_compat import HasMethods, Interval, RealNotInt, StrOptions
from .methods import METHODS, Method
from .objectives import Objective

PARAM_DOCS = {
    "estimator": """estimator : estimator object
        The classifier to clean the training set for, unfitted: a skorch
        ``NeuralNetClassifier`` (``CrossEntropyLoss`` or ``NLLLoss``) or
        ``NeuralNetBinaryClassifier``, a ``LogisticRegression``, a binary
        ``SGDClassifier(loss="log_loss")``, a boosted-trees classifier
        (``HistGradientBoostingClassifier``, LightGBM's ``LGBMClassifier``,
        XGBoost's ``XGBClassifier``), or a ``Pipeline`` ending in one of
        these (influence is then computed in the model's input space, after
        the earlier steps). Any other classifier is cleaned through
        ``surrogate``. It is cloned, never fitted itself.""",
    "surrogate": """surrogate : estimator object or None, default=None
        A model of a supported family that scores the rows in place of
        ``estimator``, for an ``estimator`` that cannot be scored itself (a
        random forest, an SVC, any classifier with ``fit``): the surrogate is
        fitted on the same training rows, scored, the plan is made on its
        scores, and ``estimator`` is refitted on the result (with
        ``sample_weight`` for "reweight"). The scores then measure how rows
        move the surrogate, not ``estimator``: pick a surrogate that fits the
        data about as well. The fitted one is ``surrogate_``.""",
    "objective": """objective : {"utility", "fairness", "robustness"} or Objective, \
default="utility"
        What influence is measured on, over the validation rows: the mean
        cross-entropy, a fairness gap between the groups of
        ``sensitive_features`` (binary targets), or the loss on adversarial
        copies. Pass an instance (``Fairness(metric="equal_opportunity")``)
        to set its parameters; they are then searchable as
        ``objective__<param>``.""",
    # "method": generated from the registry by method_doc(), below
    "prune_ratio": """prune_ratio : float in [0, 1) or "negative", default=0.05
        The fraction of training rows acted on (removed, down-weighted or
        relabelled, see ``action``). Without a constraint, the
        ``floor(prune_ratio * n_train)`` lowest scores (ties broken by row
        order; spread over ``rounds``); with one (the default under a
        fairness objective), at most that many rows, chosen by the linear
        program of ``constraint``, which may pass over low scores and act on
        higher ones. "negative" acts on every row with a negative score.
        With a bound on the objective (``Fairness(bound=b)``): the cap on the
        rows the search acts on (a float is then required).""",
    "action": """action : {"remove", "reweight", "relabel"}, default="remove"
        What happens to the rows selected. "remove" drops them. "reweight"
        gives them weights in [0, 1) (``sample_weight`` of the final fit; a
        skorch net gets a weighted mean loss), the lowest score weight 0.
        "relabel" gives each the class whose loss gradient is predicted to
        lower the objective most, ``<grad J, grad l(x_i, c) - grad l(x_i,
        y_i)>``, among the rows where that change helps. Under a constraint,
        "reweight" uses the linear program's fractional strengths; "remove"
        and "relabel" act on a 0/1 plan that keeps the budget, the constraint
        and the floor. Measured (``benchmarks/bench_fairness.py
        --constraint-check``: Adult, development seeds 100-101, demographic
        parity, constraint "utility", 3 rounds, selection rows): "relabel"
        lost 0.6-1.3 points of accuracy and raised the validation loss by
        0.03 to 0.07; "remove" and "reweight" changed accuracy by +0.15 to
        -0.52 points, the loss by +0.013 to +0.042.""",
    "constraint": """constraint : "auto", None, str or Objective, default="auto"
        An objective whose predicted change must not be harmful, e.g.
        "utility" (the validation loss must not rise while the fairness gap
        falls). The rows and strengths then solve the linear program of Li and
        Liu (ICML 2022) over both objectives' scores (scipy's HiGHS), within
        the ``prune_ratio`` budget: fewer rows may be acted on. "auto" is
        "utility" under a fairness objective (the configuration
        ``benchmarks/bench_fairness.py`` found best for fairness) and None
        otherwise; ``constraint_`` holds the one used. With ``t_i`` the
        effect of acting fully on row ``i`` (acting on it changes the
        objective ``J`` by about ``t_i / n``), the program also keeps the
        floor ``sum_i delta_i t_i >= -n J(theta)``: it never plans past the
        objective's zero. The constraint holds for the prediction only: after
        the refit the validation loss rose by 0.013 to 0.065 in every run of
        the benchmark, as the sum of first-order effects does not foresee
        (for 75 rows it predicted -0.003, the refit gave +0.031).""",
    "rounds": """rounds : "auto" or int, default="auto"
        Act on ``prune_ratio / rounds`` of the rows per round, refitting and
        re-scoring between rounds (first-order influence holds for small
        steps). Each round costs one fit and one scoring pass; rounds that
        would change nothing are skipped. "auto" is 3 under a fairness
        objective (the benchmark's best for fairness) and 1 otherwise;
        ``rounds_`` holds the number used. With a bound on the objective
        (``Fairness(bound=b)``) the rows are scored once, on the first fit,
        and ``rounds`` is the most refits ("auto": 5) of a search over how
        many of the lowest-scored rows ``k`` to act on. The first ``k`` is
        the fewest rows whose predicted change brings the gap to the bound;
        the next follow the measured signed gap of hard predictions on the
        validation rows (along the first fit's order of the groups, so it
        keeps falling past zero): the secant through the last two while
        every refit is above the bound, then Illinois regula falsi between
        the largest ``k`` above and the smallest at or below. A ``k`` is
        accepted when its refit's hard gap is at most ``b``. The search stops
        when an accepted gap that has not passed zero (signed gap >= 0: past
        it, more rows are acted on than needed) lies within a quarter of
        ``b`` below ``b``, when the bracket is one grid step wide
        (``n_train // 400`` rows, at least 1), when the ``prune_ratio`` cap
        is measured above the bound, or after ``rounds`` refits. The final
        model is the measured fit of the smallest ``k`` accepted, else of
        the lowest gap, with a warning (every fit measured is a record of
        ``gap_path_``).""",
    "validation_size": """validation_size : float in (0, 1) or int, default=0.2
        The held-out rows influence is measured on: a fraction of the rows of
        ``X`` (rounded up) or a number of rows. The split is stratified by
        ``y`` and, when ``sensitive_features`` are given, by group too (by
        ``y`` alone when a combination is too rare). Unused when ``X_val`` is
        passed to ``fit``.""",
    "refit_on": """refit_on : {"train", "all"}, default="train"
        The rows the cleaned model is trained on: the kept training rows, or
        the kept training rows plus the validation rows (never scored).
        ``InfluenceFilter`` refits on them (with ``X_val`` passed to ``fit``,
        "all" adds the rows of ``X_val``); ``InfluenceSampler`` returns them
        (rows of ``X`` only), for the next step to train on.""",
    "batch_size": """batch_size : int, default=2048
        Rows per chunk in the scoring kernels; memory grows with
        ``batch_size`` times the number of parameters.""",
    "memory": """memory : str, joblib.Memory or None, default=None
        Caches the first fit and its scores, keyed on everything they depend
        on (estimator, objective, method, data, seeds), as ``Pipeline`` does
        for transformers: a search over ``prune_ratio`` (or ``refit_on``) then
        fits the first model once per split. Caching needs ``random_state`` to
        be an int (else every fit draws a new split). A str is a cache
        directory.""",
    "verbose": """verbose : int, default=0
        Shows a progress bar (tqdm) over the stages fit, score and
        refit/select when > 0.""",
    "random_state": """random_state : int, RandomState instance or None, default=None
        Seeds the split, torch's random number generator during the fits (so
        net initialisation and batch order repeat) and randomised methods. An
        int makes ``fit`` deterministic: same split, scores, kept rows and
        predictions. torch's global random state is restored after ``fit``.""",
}


def _summary(cls) -> str:
    """The first sentence of a class's docstring (its summary line)."""
    doc = (cls.__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ").strip() or cls.__name__


def method_doc() -> str:
    """The ``method`` parameter's documentation: every key of ``METHODS``.

    Generated from the registry, so the list is the one ``fit`` accepts:
    each key with the summary line of its class, and whether it needs
    training checkpoints or measures no objective (from the class's flags).
    The signals register themselves when :mod:`skinfluence.signals` is
    imported, which is done here first.
    """
    from . import signals  # noqa: F401 - registers the "signal_*" methods

    keys = sorted(METHODS.keys(), key=lambda k: (k.startswith("signal_"), k))
    items = []
    for key in keys:
        cls = METHODS._classes[key]
        notes = []
        if cls.needs_checkpoints:
            notes.append("needs training checkpoints")
        if not cls.needs_objective:
            notes.append("measures no objective")
        note = f" ({'; '.join(notes)})" if notes else ""
        items.append(f'        - ``"{key}"``{note}: {_summary(cls)}')
    return """method : str or Method, default="ip"
        How each training row is scored: one of the keys below (the
        registry :data:`skinfluence.methods.METHODS`), or a
        :class:`~skinfluence.Method` instance to set its parameters (then
        searchable as ``method__<param>``). A method that needs training
        checkpoints is refused for a model family that records none; with a
        skorch net the filter adds a
        :class:`~skinfluence.callbacks.TracInCheckpoints` callback to the
        cloned net (also for "self_influence", which then sums over the
        checkpoints). The ``"signal_*"`` keys are the data-debugging signals
        of :func:`~skinfluence.compute_signals`, scored as minus the signal
        (higher is still more beneficial).

""" + "\n".join(items)


PARAM_DOCS["method"] = method_doc()

#: the Parameters section of both estimators, in the order of their signature
PARAM_DOCS["parameters"] = "\n    ".join(
    PARAM_DOCS[name]
    for name in (
        "estimator",
        "objective",
        "method",
        "prune_ratio",
        "action",
        "constraint",
        "rounds",
        "surrogate",
        "validation_size",
        "refit_on",
        "batch_size",
        "memory",
        "verbose",
        "random_state",
    )
)

#: the parameters of ``InfluenceFilter.fit`` and ``InfluenceSampler.fit_resample``,
#: indented for a method docstring
FIT_PARAMS_DOC = """X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            The rows to clean (validation rows are split off them unless
            ``X_val`` is given).
        y : array-like of shape (n_samples,)
            Class labels.
        sensitive_features : array-like or DataFrame of shape (n_samples,) or \
(n_samples, k), default=None
            Group labels of the rows of ``X``: the fairness objective measures
            its gap between them on the validation rows, and the split is
            stratified by them. Several columns give intersectional groups.
        X_val : {array-like, DataFrame} of shape (n_val, n_features), default=None
            Explicit validation rows; then every row of ``X`` is a training row.
        y_val : array-like of shape (n_val,), default=None
            Their labels.
        sensitive_features_val : array-like of shape (n_val,) or (n_val, k), \
default=None
            Their group labels (for the fairness objective).
        **fit_params : dict
            Parameters of the estimator's ``fit`` (``sample_weight``, ...),
            sliced to the rows of each fit. With metadata routing enabled they
            must be requested by the estimator."""

PARAMETER_CONSTRAINTS = {
    "estimator": [HasMethods(["fit"])],
    "surrogate": [None, HasMethods(["fit"])],
    "objective": [str, Objective],
    "method": [str, Method],
    "prune_ratio": [Interval(Real, 0, 1, closed="left"), StrOptions({"negative"})],
    "action": [StrOptions(set(ACTIONS))],
    "constraint": [None, str, Objective],
    "rounds": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "refit_on": [StrOptions({"train", "all"})],
    "validation_size": [
        Interval(RealNotInt, 0, 1, closed="neither"),
        Interval(Integral, 1, None, closed="left"),
    ],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "memory": [None, str, HasMethods(["cache"])],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
}


def scoring_estimator(owner):
    """The estimator whose fits are scored: ``surrogate`` when given."""
    return owner.estimator if owner.surrogate is None else owner.surrogate


def cleaning_settings(owner) -> dict:
    """The parameters of ``owner`` that :func:`skinfluence._cleaning.clean` takes."""
    return {
        "estimator": scoring_estimator(owner),
        "prune_ratio": owner.prune_ratio,
        "validation_size": owner.validation_size,
        "batch_size": owner.batch_size,
        "memory": owner.memory,
        "random_state": owner.random_state,
        "action": owner.action,
    }
