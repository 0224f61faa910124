"""Influence functions: inverse-curvature-weighted inner products."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

from sklearn.exceptions import ConvergenceWarning

from .._curvature import (
    CURVATURES,
    CGInverse,
    Damped,
    ExactInverse,
    LiSSAInverse,
    curvature_scale,
)
from .._kernels import grad_dot, grad_dot_classes, torch_generator
from .._sklearn_compat import Interval, StrOptions
from ._base import METHODS, Method

SOLVERS = ("exact", "cg", "lissa")

#: ``damping="auto"``: the relative damping tried first (see InfluenceFunction),
#: for models linear in their parameters and for the others (networks)
AUTO_DAMPING = {"linear": 0.01, "network": 3.0}


def auto_damping(model) -> float:
    """The relative damping ``damping="auto"`` starts from for ``model``."""
    return AUTO_DAMPING["linear" if model.linear_in_params else "network"]
#: ``damping="auto"``: how many times CG's damping is raised tenfold at most
AUTO_RAISES = 4


class CGConvergenceError(RuntimeError):
    """Conjugate gradients stopped short of their tolerance.

    Raised by :class:`InfluenceFunction` with ``on_unconverged="raise"``;
    ``info`` is the :class:`~skinfluence.kernels.CGInfo` of the solve.

    Examples
    --------
    >>> from skinfluence.kernels import CGInfo
    >>> from skinfluence.methods import CGConvergenceError
    >>> info = CGInfo(n_iter=200, residual=3e-3, tol=1e-6, converged=False,
    ...               stop="max_iter")
    >>> CGConvergenceError(info).info.n_iter
    200
    """

    def __init__(self, info, detail: str = "") -> None:
        super().__init__(
            info.message()
            + detail
            + " Pass on_unconverged='warn' to accept the partial solve."
        )
        self.info = info


def _raised_message(tried, damping: float, scale: float, info) -> str:
    """What ``damping="auto"`` tried: each damping that fell short, and the last."""
    short = "; ".join(
        f"damping {d:g} (lambda {d * scale:.3g}): {i.n_iter} iterations, "
        f"residual {i.residual:.2e}, {i.stop}"
        for d, i in tried
    )
    end = "reached" if info.converged else "did not reach"
    return (
        f"damping='auto': CG did not reach tol={info.tol:g} at {short}. Raised "
        f"tenfold, damping {damping:g} (lambda = {damping:g} x trace/P = "
        f"{damping * scale:.3g}) {end} it in {info.n_iter} iterations (residual "
        f"{info.residual:.2e}). Pass a damping to fix it (then CG stopping "
        "short follows on_unconverged), or raise max_iter."
    )


def _warn_when_exact_is_cheap(inv: LiSSAInverse, model, n_rows: int) -> None:
    """LiSSA runs ``depth`` curvature products; a small model is solved exactly."""
    n_params = sum(p.numel() for p in model.params.values())
    if n_params > ExactInverse.max_params:
        return
    rows = n_rows if inv.batch_rows is None else min(inv.batch_rows, n_rows)
    warnings.warn(
        f"solver='lissa' runs depth={inv.depth} curvature products over {rows} "
        f"rows each, while this model has {n_params} parameters: "
        f"solver='exact' forms the {n_params} x {n_params} matrix once and is "
        "usually far faster (and exact) here.",
        UserWarning,
        stacklevel=4,
    )


@METHODS.register
class InfluenceFunction(Method):
    """Influence function of Koh and Liang (2017).

    ``s_i = <(C + lambda I)^-1 grad J(theta), grad l_i(theta)>``, with ``C``
    the curvature of the training objective (mean loss over the scored rows
    plus the model's L2 penalty): its Hessian, or its generalized
    Gauss-Newton matrix, and ``lambda = damping x trace / P`` (see
    ``damping``). Removing row ``i`` changes ``J`` by about ``s_i / n``, so
    a high score is a row whose removal would hurt.

    Parameters
    ----------
    solver : {"cg", "exact", "lissa"}, default="cg"
        "exact" forms the curvature matrix (small models only), "cg" runs
        conjugate gradients on its products, "lissa" the stochastic
        Neumann-series recursion of Agarwal et al. (2017).
    damping : float or "auto", default="auto"
        Relative damping: ``lambda = damping x trace(G) / P`` is added to the
        curvature's diagonal, ``G`` the Gauss-Newton matrix of the training
        objective (the curvature itself with ``curvature="ggn"``; for the
        Hessian, its positive semi-definite part, the same matrix for
        linear models) and ``P`` the number of parameters, so the damping is
        measured in units of the curvature's mean eigenvalue and means the
        same on any model and feature scale. The trace is the exact diagonal's
        up to 256 parameters and Hutchinson's estimate with 32 Rademacher
        probes from a generator seeded with 0 above (deterministic; 4-10%
        off the exact trace on the benchmarks' MLPs); see
        :func:`skinfluence.kernels.curvature_scale`. ``damping=0`` solves
        undamped and skips the trace.

        "auto" is 0.01 for a model linear in its parameters
        (LogisticRegression, SGDClassifier, boosted trees' leaf values) and 3
        for the others (networks), raised tenfold (up to four times) while CG
        stops short of ``tol``, with a
        :class:`~sklearn.exceptions.ConvergenceWarning` that gives each
        damping tried, its iterations and final residual, and the damping
        that was used (``damping_``). A damping given explicitly is used as
        given, and CG stopping short follows ``on_unconverged``.

        The defaults were chosen by the linear datamodeling score
        (:func:`skinfluence.metrics.linear_datamodeling_score`:
        ``benchmarks/bench_damping.py`` on the counterfactual benchmark's
        retraining) on development data only: 3,000 training and 1,000
        validation rows of Adult's ``train`` subset (never its test subset)
        and of COMPAS (data seed 0), LogisticRegression (C=1) and a skorch
        MLP (1 x 32 ReLU, 20 epochs, seed 0), utility and fairness
        objectives, 100 random halves retrained with seeds 100-102. Mean
        LDS over those 8 cells at the relative dampings 1e-4, 1e-3, 1e-2,
        0.1, 0.3, 1, 3, 10, 30: 0.656, 0.691, 0.741, 0.799, 0.826, 0.840,
        0.842, 0.815, 0.774 (worst cell: 0.142, 0.190, 0.278, 0.397, 0.479,
        0.573, 0.660, 0.557, 0.471): 3 is best by both the mean and the
        worst cell over all 8 cells. The networks want more damping (MLP
        utility LDS 0.749 on COMPAS and 0.660 on Adult at 3, against 0.364
        and 0.278 at 0.01), the logistic regressions less: their 4 cells
        average 0.945 at 0.01 (0.929, 0.998, 0.866, 0.988), 0.945 at 0.1 and
        0.861 at 3, so a model linear in its parameters starts at 0.01. At 3 CG
        reaches ``tol=1e-6`` in 7 to 54 iterations in every cell; below 0.3
        it needs more than the default 200 on the MLPs. With
        ``curvature="hessian"`` a network's Hessian can be indefinite: CG
        stops at non-positive curvature unless ``lambda`` exceeds its most
        negative eigenvalue, and "auto" raises the damping until it does.
    tol : float, default=1e-6
        CG's relative residual tolerance.
    max_iter : int, default=None
        CG iterations (default 200) or LiSSA depth (default 1000).
    scale : float, default=None
        LiSSA's scale; must exceed the largest eigenvalue of the damped
        curvature. ``None`` estimates that eigenvalue by power iteration and
        takes 1.2 times it.
    lissa_batch_size : int, default=None
        Rows per LiSSA curvature estimate, drawn at random each step;
        ``None`` uses all rows (deterministic).
    curvature : {"ggn", "hessian"}, default="ggn"
        "ggn" the generalized Gauss-Newton ``J^T H_out J`` (positive
        semi-definite for cross-entropy, BCE and NLL losses, so CG converges
        at any damping > 0; half the cost of a Hessian product; equal to the
        Hessian for LogisticRegression and SGDClassifier), "hessian" the
        exact Hessian (forward-over-reverse products). See
        :class:`skinfluence.kernels.GGN` and
        :class:`skinfluence.kernels.Hessian`.
    on_unconverged : {"raise", "warn"}, default="raise"
        What CG does when it stops short of ``tol`` (after ``max_iter``
        iterations, or at non-positive curvature): raise
        :class:`CGConvergenceError`, or warn (RuntimeWarning) and score with
        the partial solve. Either way ``cg_info_`` records it.

    Attributes
    ----------
    cg_info_ : CGInfo
        With ``solver="cg"``, how the last solve ended: iterations, final
        relative residual, whether it reached ``tol`` and why it stopped
        (:class:`skinfluence.kernels.CGInfo`). Set by :meth:`score`; a
        meta-estimator's fitted ``method_`` carries it.
    damping_ : float
        The relative damping of the last solve (with "auto", after any
        raise). Set by :meth:`score`.
    curvature_scale_ : float
        ``trace(G) / P`` of the last solve, so that its ``lambda`` is
        ``damping_ * curvature_scale_`` (0 when ``damping=0``). Set by
        :meth:`score`.

    See Also
    --------
    TRAK : projected gradients with the Gauss-Newton kernel in the
        projected space, no solver.

    References
    ----------
    Koh and Liang, "Understanding Black-box Predictions via Influence
    Functions", ICML 2017. Martens, "New insights and perspectives on the
    natural gradient method", JMLR 2020 (the generalized Gauss-Newton).

    Examples
    --------
    On a logistic regression the GGN is the Hessian, so both curvatures
    give the same scores; CG records how it converged:

    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import InfluenceFunction
    >>> from skinfluence.methods import CGConvergenceError
    >>> from skinfluence.models import as_torch_model
    >>> from skinfluence.objectives import Utility
    >>> X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    >>> model = as_torch_model(LogisticRegression().fit(X[:40], y[:40]))
    >>> J = Utility().bind(model, X[40:], y[40:])
    >>> Xt, yt = model.prepare_X(X[:40]), model.prepare_y(y[:40])
    >>> ggn = InfluenceFunction(curvature="ggn", tol=1e-10)
    >>> s = ggn.score(model, J, Xt, yt, batch_size=16)
    >>> h = InfluenceFunction(curvature="hessian", tol=1e-10).score(
    ...     model, J, Xt, yt, batch_size=16)
    >>> bool(np.allclose(s, h, rtol=1e-8)), ggn.cg_info_.converged
    (True, True)
    >>> ggn.damping_  # "auto" on a linear model: 0.01 x trace / P, and it converged
    0.01

    Stopping short of ``tol`` raises, with the solve's record:

    >>> try:
    ...     InfluenceFunction(damping=3, max_iter=1).score(model, J, Xt, yt, batch_size=16)
    ... except CGConvergenceError as err:
    ...     print(err.info.stop, err.info.n_iter)
    max_iter 1
    """

    _key = "influence_function"
    inverts_curvature = True
    _parameter_constraints: dict = {
        "solver": [StrOptions(set(SOLVERS))],
        "damping": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "scale": [Interval(Real, 0, None, closed="neither"), None],
        "lissa_batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "curvature": [StrOptions(set(CURVATURES))],
        "on_unconverged": [StrOptions({"raise", "warn"})],
    }

    def __init__(
        self,
        solver: str = "cg",
        damping: float | str = "auto",
        tol: float = 1e-6,
        max_iter: int | None = None,
        scale: float | None = None,
        lissa_batch_size: int | None = None,
        curvature: str = "ggn",
        on_unconverged: str = "raise",
    ) -> None:
        self.solver = solver
        self.damping = damping
        self.tol = tol
        self.max_iter = max_iter
        self.scale = scale
        self.lissa_batch_size = lissa_batch_size
        self.curvature = curvature
        self.on_unconverged = on_unconverged

    def operator(self, model, X, y, *, batch_size):
        """The damped curvature ``C + lambda I`` of the rows ``(X, y)``.

        ``lambda = damping x trace(G) / P`` (see ``damping``); with
        ``damping="auto"``, at the first damping it tries.

        Returns
        -------
        Damped
            An operator on parameter dicts (see :mod:`skinfluence.kernels`).
        """
        curvature = self._curvature(model, X, y, batch_size)
        damping = auto_damping(model) if isinstance(self.damping, str) else self.damping
        return Damped(
            curvature, damping * curvature_scale(curvature) if damping else 0.0
        )

    def _curvature(self, model, X, y, batch_size):
        return CURVATURES[self.curvature](model, model.params, X, y, batch_size)

    def inverse(self, operator, *, random_state=None):
        """The configured solver wrapped around ``operator``: ``b -> A^-1 b``."""
        if self.solver == "exact":
            return ExactInverse(operator)
        if self.solver == "cg":
            return CGInverse(operator, tol=self.tol, max_iter=self.max_iter or 200)
        return LiSSAInverse(
            operator,
            scale=self.scale,
            depth=self.max_iter or 1000,
            batch_rows=self.lissa_batch_size,
            generator=torch_generator(random_state),
        )

    def inverse_hvp(self, model, v, X, y, *, batch_size, random_state=None):
        """``(C + lambda I)^-1 v`` with the configured curvature and solver.

        Sets ``curvature_scale_`` and ``damping_``. With ``solver="cg"``,
        sets ``cg_info_``; when CG stops short of ``tol``, ``damping="auto"``
        raises the damping tenfold (up to 4 times) and warns
        (:class:`~sklearn.exceptions.ConvergenceWarning`) with what it
        tried; an explicit damping (or the last "auto" one) raises
        :class:`CGConvergenceError` (or warns, see ``on_unconverged``).
        """
        self.validate()
        curvature = self._curvature(model, X, y, batch_size)
        auto = isinstance(self.damping, str)
        damping = auto_damping(model) if auto else float(self.damping)
        self.curvature_scale_ = scale = curvature_scale(curvature) if damping else 0.0
        tried = []  # (damping, CGInfo) of the solves that fell short
        while True:
            inv = self.inverse(
                Damped(curvature, damping * scale), random_state=random_state
            )
            if isinstance(inv, LiSSAInverse):
                _warn_when_exact_is_cheap(inv, model, len(X))
            x = inv(v)
            self.damping_ = damping
            if not isinstance(inv, CGInverse):
                return x
            self.cg_info_ = info = inv.info_
            if info.converged or not auto or len(tried) == AUTO_RAISES:
                break
            tried.append((damping, info))
            damping *= 10.0
        if info.converged:
            if tried:
                warnings.warn(
                    _raised_message(tried, damping, scale, info),
                    ConvergenceWarning,
                    stacklevel=3,
                )
            return x
        detail = "" if not tried else " " + _raised_message(tried, damping, scale, info)
        if self.on_unconverged == "raise":
            raise CGConvergenceError(info, detail)
        warnings.warn(info.message() + detail, RuntimeWarning, stacklevel=3)
        return x

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        v = objective.gradient(model.params, batch_size=batch_size)
        x = self.inverse_hvp(
            model, v, X, y, batch_size=batch_size, random_state=random_state
        )
        return grad_dot(model, model.params, x, X, y, batch_size)

    def score_relabel(
        self, model, objective, X, y, *, n_classes, batch_size, random_state=None
    ):
        """Relabel scores (see :meth:`Method.score_relabel`): one solve, at the true labels.

        ``x = (C + damping I)^-1 grad J`` with the curvature of the rows
        under their true labels ``y`` (one solve, one seed), then
        ``s[c, i] = <x, grad l(x_i, c)>``: one forward-mode pass per class.
        """
        v = objective.gradient(model.params, batch_size=batch_size)
        x = self.inverse_hvp(
            model, v, X, y, batch_size=batch_size, random_state=random_state
        )
        return grad_dot_classes(model, model.params, x, X, n_classes, batch_size)
