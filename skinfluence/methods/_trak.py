"""TRAK: randomly projected gradients and the kernel correction in that space."""

from __future__ import annotations

from numbers import Integral, Real

import torch

from .._kernels import (
    GaussianProjection,
    derive_seed,
    grad_dot,
    projected_gradients,
)
from .._progress import progress
from .._sklearn_compat import Interval, StrOptions
from ._base import METHODS, Method
from ._gradient import IPEnsemble

ENSEMBLES = ("auto", "checkpoints", "dropout")


@METHODS.register
class TRAK(Method):
    """TRAK (Park et al., ICML 2023): influence through projected gradients.

    For each ensemble member ``theta_m``, a seeded Gaussian projection ``R``
    (``P x proj_dim``, entries ``N(0, 1/proj_dim)``) maps the per-row
    gradients to ``phi_i = R^T grad l_i(theta_m)`` and the objective's
    gradient to ``phi_J = R^T grad J(theta_m)``, and

    ``s_i = phi_J^T (Phi^T Phi / n + damping I)^-1 phi_i``,

    ``Phi`` the ``n x proj_dim`` matrix of the ``phi_i``. The score is the
    mean over the members. ``Phi^T Phi / n`` is the (empirical) Gauss-Newton
    matrix of the training loss seen through ``R``, so ``s_i`` is the
    influence function of the projected model; like
    :class:`InfluenceFunction`'s, removing row ``i`` changes ``J`` by about
    ``s_i / n``: higher is more beneficial, and ``damping`` means the same.
    The paper's ``(Phi^T Phi)^-1`` is this one times ``n`` (a scale, which
    no ranking sees).

    ``Phi`` is never held: one pass over the rows (per-row gradients of a
    chunk times ``R``) accumulates the ``proj_dim x proj_dim`` matrix
    ``Phi^T Phi``, and a second, forward-mode pass computes
    ``phi_i . w = <grad l_i, R w>`` with ``w = (Phi^T Phi / n + damping
    I)^-1 phi_J``. Memory: one chunk's per-row gradients (at most
    ``batch_size`` rows and ``2**25`` entries), ``R`` (``P x proj_dim``, or
    a block of it at a time beyond ``2**26`` entries) and
    ``proj_dim x proj_dim``. Any objective works: its gradient is projected
    like a row's.

    Parameters
    ----------
    proj_dim : int, default=512
        Dimension of the projection (the paper uses 512 to 20,480).
    n_members : int, default=1
        Ensemble size: the last ``n_members`` recorded checkpoints (all of
        them when there are fewer), or the fitted model and
        ``n_members - 1`` dropout copies of it (see :class:`IPEnsemble`).
        Each member has a projection of its own.
    ensemble : {"auto", "checkpoints", "dropout"}, default="auto"
        Where the members come from: "auto" takes checkpoints when the
        model has them, else dropout copies.
    max_dropout : float, default=0.01
        The dropout members' largest dropout rate, as in :class:`IPEnsemble`.
    damping : float, default=0.0
        Added to ``Phi^T Phi / n``. At 0 the solve is a pseudo-inverse (as
        the paper's, which has no damping), which also serves
        ``proj_dim > n``.

    See Also
    --------
    InfluenceFunction : the same formula with the model's own curvature,
        solved by CG.
    IPEnsemble : the dropout members.

    Notes
    -----
    With ``proj_dim >= P`` and one member (and ``damping=0``) the projection
    is invertible on the gradients' span and the score equals the
    unprojected ``grad J^T (G^T G / n)^+ grad l_i``, ``G`` the ``n x P``
    per-row gradients. The paper's margin output function and its
    ``Q = diag(1 - p_i)`` re-weighting are folded into the loss gradients
    here, so that any objective and any loss fit the same formula.

    References
    ----------
    Park, Georgiev, Ilyas, Leclerc and Madry, "TRAK: Attributing Model
    Behavior at Scale", ICML 2023.

    Examples
    --------
    With ``proj_dim`` at least the number of parameters, TRAK is the
    unprojected formula:

    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import TRAK, compute_influence
    >>> from skinfluence.kernels import per_row_gradients
    >>> from skinfluence.models import as_torch_model
    >>> from skinfluence.objectives import Utility
    >>> X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    >>> clf = LogisticRegression().fit(X[:60], y[:60])
    >>> s = compute_influence(clf, X[:60], y[:60], X[60:], y[60:],
    ...                       method=TRAK(proj_dim=8), random_state=0)
    >>> model = as_torch_model(clf)
    >>> G = per_row_gradients(model, model.params, model.prepare_X(X[:60]),
    ...                       model.prepare_y(y[:60])).numpy()
    >>> g = Utility().bind(model, X[60:], y[60:]).gradient(model.params, batch_size=64)
    >>> g = np.concatenate([g["weight"].ravel(), g["bias"].ravel()])
    >>> bool(np.allclose(s, G @ np.linalg.pinv(G.T @ G / 60) @ g))
    True
    """

    _key = "trak"
    _parameter_constraints: dict = {
        "proj_dim": [Interval(Integral, 1, None, closed="left")],
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "ensemble": [StrOptions(set(ENSEMBLES))],
        "max_dropout": [Interval(Real, 0, 1, closed="left")],
        "damping": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        proj_dim: int = 512,
        n_members: int = 1,
        *,
        ensemble: str = "auto",
        max_dropout: float = 0.01,
        damping: float = 0.0,
    ) -> None:
        self.proj_dim = proj_dim
        self.n_members = n_members
        self.ensemble = ensemble
        self.max_dropout = max_dropout
        self.damping = damping

    @property
    def needs_checkpoints(self) -> bool:
        """Checkpoints are required with ``ensemble="checkpoints"``."""
        return self.ensemble == "checkpoints"

    @property
    def wants_checkpoints(self) -> bool:
        """Checkpoints are used unless ``ensemble="dropout"``."""
        return self.ensemble != "dropout"

    def members(self, model, random_state) -> list:
        """The members' parameter dicts (see ``n_members`` and ``ensemble``)."""
        self.validate()
        checkpoints = model.checkpoint_params() if self.wants_checkpoints else []
        if checkpoints:
            return [params for params, _ in checkpoints[-self.n_members :]]
        dropout = IPEnsemble(n_members=self.n_members, max_dropout=self.max_dropout)
        return list(dropout.members(model.params, random_state))

    def score(self, model, objective, X, y, *, batch_size, random_state=None):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        self.validate()
        self.check_checkpoints(model)
        seed = derive_seed(random_state)
        members = self.members(model, seed)
        total = None
        for m, params in enumerate(progress(members, desc="TRAK members")):
            projection = GaussianProjection(
                params, self.proj_dim, (seed + 7919 * (m + 1)) % 2**31
            )
            s = _member_scores(
                model, objective, params, X, y, projection, self.damping, batch_size
            )
            total = s if total is None else total + s
        return total / len(members)


def _member_scores(model, objective, params, X, y, projection, damping, batch_size):
    """``phi_J^T (Phi^T Phi / n + damping I)^-1 phi_i`` for one member."""
    k = projection.k
    kernel = torch.zeros(k, k, dtype=torch.float64, device=model.device)
    for phi in projected_gradients(model, params, X, y, projection, batch_size):
        phi = phi.to(torch.float64)
        kernel += phi.T @ phi
    kernel /= max(len(X), 1)
    v = objective.gradient(params, batch_size=batch_size)
    phi_J = projection.project(v).to(torch.float64)
    kernel += damping * torch.eye(k, dtype=kernel.dtype, device=kernel.device)
    return grad_dot(
        model, params, projection.lift(_solve(kernel, phi_J)), X, y, batch_size
    )


def _solve(kernel, b):
    """``kernel^+ b``: by Cholesky when positive definite, else a pseudo-inverse."""
    L, info = torch.linalg.cholesky_ex(kernel)
    if int(info) == 0:
        return torch.cholesky_solve(b[:, None], L)[:, 0]
    return torch.linalg.pinv(kernel, hermitian=True) @ b
