"""Influence functions: inverse-Hessian-weighted inner products."""

from __future__ import annotations

from numbers import Integral, Real

import torch

from .._curvature import cg, exact_solve, lissa, make_hvp, top_eigenvalue
from .._kernels import grad_dot, torch_generator
from .._sklearn_compat import Interval, StrOptions
from ._base import METHODS, Method

SOLVERS = ("exact", "cg", "lissa")


@METHODS.register
class InfluenceFunction(Method):
    """Influence function of Koh and Liang (2017).

    ``s_i = <(H + damping I)^-1 grad J(theta), grad l_i(theta)>``, with ``H``
    the Hessian of the training objective (mean loss over the scored rows plus
    the model's L2 penalty). Removing row ``i`` changes ``J`` by about
    ``s_i / n``, so a high score is a row whose removal would hurt.

    Parameters
    ----------
    solver : {"cg", "exact", "lissa"}, default="cg"
        "exact" forms the Hessian (small models only), "cg" runs conjugate
        gradients on Hessian-vector products, "lissa" the stochastic
        Neumann-series recursion of Agarwal et al. (2017).
    damping : float, default=1e-3
        Added to the Hessian's diagonal; needed for non-convex models.
    tol : float, default=1e-6
        CG's relative residual tolerance.
    max_iter : int, default=None
        CG iterations (default 200) or LiSSA depth (default 1000).
    scale : float, default=None
        LiSSA's scale; must exceed the largest eigenvalue of the damped
        Hessian. ``None`` estimates that eigenvalue by power iteration and
        takes 1.2 times it.
    lissa_batch_size : int, default=None
        Rows per LiSSA Hessian estimate, drawn at random each step; ``None``
        uses all rows (deterministic).

    References
    ----------
    Koh and Liang, "Understanding Black-box Predictions via Influence
    Functions", ICML 2017.

    Examples
    --------
    >>> from skinfluence.methods import InfluenceFunction
    >>> InfluenceFunction(solver="exact", damping=0.01)
    InfluenceFunction(damping=0.01, solver='exact')
    """

    _key = "influence_function"
    _parameter_constraints: dict = {
        "solver": [StrOptions(set(SOLVERS))],
        "damping": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "scale": [Interval(Real, 0, None, closed="neither"), None],
        "lissa_batch_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        solver: str = "cg",
        damping: float = 1e-3,
        tol: float = 1e-6,
        max_iter: int | None = None,
        scale: float | None = None,
        lissa_batch_size: int | None = None,
    ) -> None:
        self.solver = solver
        self.damping = damping
        self.tol = tol
        self.max_iter = max_iter
        self.scale = scale
        self.lissa_batch_size = lissa_batch_size

    def inverse_hvp(self, model, v, X, y, *, batch_size, random_state=None):
        """``(H + damping I)^-1 v`` with the configured solver."""
        self.validate()
        params = model.params
        if self.solver == "exact":
            return exact_solve(
                model, params, X, y, v, damping=self.damping, batch_size=batch_size
            )
        hvp = make_hvp(model, params, X, y, batch_size)
        if self.solver == "cg":
            return cg(
                hvp,
                v,
                damping=self.damping,
                tol=self.tol,
                max_iter=self.max_iter or 200,
            )
        gen = torch_generator(random_state)
        scale = self.scale
        if scale is None:
            scale = 1.2 * (top_eigenvalue(hvp, params, generator=gen) + self.damping)
        if self.lissa_batch_size is None:

            def matvec(j, h):
                return hvp(h)

        else:
            m = min(int(self.lissa_batch_size), len(X))

            def matvec(j, h):
                idx = torch.randperm(len(X), generator=gen)[:m]
                return make_hvp(model, params, X[idx], y[idx], batch_size)(h)

        return lissa(
            matvec, v, damping=self.damping, scale=scale, depth=self.max_iter or 1000
        )

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        v = objective.gradient(model.params, batch_size=batch_size)
        x = self.inverse_hvp(
            model, v, X, y, batch_size=batch_size, random_state=random_state
        )
        return grad_dot(model, model.params, x, X, y, batch_size)
