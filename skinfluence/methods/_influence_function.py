"""Influence functions: inverse-curvature-weighted inner products."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

from .._curvature import (
    CURVATURES,
    CGInverse,
    Damped,
    ExactInverse,
    LiSSAInverse,
)
from .._kernels import grad_dot, torch_generator
from .._sklearn_compat import Interval, StrOptions
from ._base import METHODS, Method

SOLVERS = ("exact", "cg", "lissa")


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

    def __init__(self, info) -> None:
        super().__init__(
            info.message() + " Pass on_unconverged='warn' to accept the partial solve."
        )
        self.info = info


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

    ``s_i = <(C + damping I)^-1 grad J(theta), grad l_i(theta)>``, with ``C``
    the curvature of the training objective (mean loss over the scored rows
    plus the model's L2 penalty): its Hessian, or its generalized
    Gauss-Newton matrix. Removing row ``i`` changes ``J`` by about
    ``s_i / n``, so a high score is a row whose removal would hurt.

    Parameters
    ----------
    solver : {"cg", "exact", "lissa"}, default="cg"
        "exact" forms the curvature matrix (small models only), "cg" runs
        conjugate gradients on its products, "lissa" the stochastic
        Neumann-series recursion of Agarwal et al. (2017).
    damping : float, default=1e-3
        Added to the curvature's diagonal, for both curvatures. Chosen on
        Adult's ``train`` subset only (5,000 training and 1,000 validation
        rows drawn from it, seed 0; never its test subset), with the
        benchmarks' skorch MLP (2 x 128 ReLU, 5 epochs) and
        LogisticRegression, on the grid 1e-1, 1e-2, ..., 1e-5: the smallest
        damping at which CG on the MLP's GGN reaches ``tol=1e-6`` within the
        default ``max_iter=200`` (iterations: 17, 45, 131, 383, 1,210).
        Smaller damping is closer to the undamped influence but costs more
        iterations, and on the MLP the ranking keeps changing down to 1e-5
        (Spearman 0.74-0.77 between neighbours of the grid); on
        LogisticRegression it settles near the model's own L2 penalty
        (Spearman 0.974 between 1e-3 and 1e-4, 0.999 between 1e-4 and
        1e-5). The MLP's Hessian is indefinite at every damping of the grid
        (CG met negative curvature within 6 iterations): with
        ``curvature="hessian"`` a network usually needs a damping larger
        than its most negative eigenvalue, which the error (or
        ``cg_info_``) reports.
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

    Stopping short of ``tol`` raises, with the solve's record:

    >>> try:
    ...     InfluenceFunction(max_iter=1).score(model, J, Xt, yt, batch_size=16)
    ... except CGConvergenceError as err:
    ...     print(err.info.stop, err.info.n_iter)
    max_iter 1
    """

    _key = "influence_function"
    inverts_curvature = True
    _parameter_constraints: dict = {
        "solver": [StrOptions(set(SOLVERS))],
        "damping": [Interval(Real, 0, None, closed="left")],
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
        damping: float = 1e-3,
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
        """The damped curvature ``C + damping I`` of the rows ``(X, y)``.

        Returns
        -------
        Damped
            An operator on parameter dicts (see :mod:`skinfluence.kernels`).
        """
        curvature = CURVATURES[self.curvature](model, model.params, X, y, batch_size)
        return Damped(curvature, self.damping)

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
        """``(C + damping I)^-1 v`` with the configured curvature and solver.

        With ``solver="cg"``, sets ``cg_info_`` and raises
        :class:`CGConvergenceError` (or warns, see ``on_unconverged``) when
        CG stops short of ``tol``.
        """
        self.validate()
        operator = self.operator(model, X, y, batch_size=batch_size)
        inv = self.inverse(operator, random_state=random_state)
        if isinstance(inv, LiSSAInverse):
            _warn_when_exact_is_cheap(inv, model, len(X))
        x = inv(v)
        if isinstance(inv, CGInverse):
            self.cg_info_ = info = inv.info_
            if not info.converged:
                if self.on_unconverged == "raise":
                    raise CGConvergenceError(info)
                warnings.warn(info.message(), RuntimeWarning, stacklevel=3)
        return x

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        v = objective.gradient(model.params, batch_size=batch_size)
        x = self.inverse_hvp(
            model, v, X, y, batch_size=batch_size, random_state=random_state
        )
        return grad_dot(model, model.params, x, X, y, batch_size)
