"""TRAK: projected gradients of the margin, its kernel, then Q (Park et al. 2023)."""

from __future__ import annotations

import copy
import functools
import warnings
from numbers import Integral, Real

import torch
from torch import Tensor

from .. import _tree as tree
from .._kernels import (
    GaussianProjection,
    derive_seed,
    grad_dot,
    projected_gradients,
    row_losses,
)
from .._progress import progress
from .._sklearn_compat import Interval, StrOptions
from ._base import METHODS, Method
from ._gradient import IPEnsemble

ENSEMBLES = ("auto", "checkpoints", "dropout")

#: the largest condition number of the damped kernel accepted without a warning
#: (at most ``1 / eps`` of the gradients' dtype: beyond it, the solve is rounding)
MAX_CONDITION = 1e10


@METHODS.register
class TRAK(Method):
    """TRAK (Park et al., ICML 2023): projected margin gradients and their kernel.

    For each member ``theta_m`` (see ``n_members``), a seeded Gaussian
    projection ``R_m`` (``P x proj_dim``, entries ``N(0, 1/proj_dim)``)
    maps each training row's gradient of its margin
    ``f_i = log(p_i / (1 - p_i))``, ``p_i`` the predicted probability of its
    label (for a binary logit ``z``: ``f_i = +-z``), to
    ``phi_i = R_m^T grad f_i(theta_m)``, and the objective's gradient to
    ``phi_J = R_m^T grad J(theta_m)``. With ``Phi_m`` the ``n x proj_dim``
    matrix of the ``phi_i``, ``K_m = Phi_m^T Phi_m / n + lambda_m I`` and
    ``Q_i = 1 - p_i``,

    ``s_i = - [mean_m phi_J^T K_m^-1 phi_i] * [mean_m Q_i(theta_m)]``,

    the paper's Algorithm 1 (the kernel products and ``Q`` are averaged
    over the members separately, then multiplied) with the package's sign:
    ``-s_i / n`` is TRAK's prediction of how much including row ``i``
    changes ``J``, so higher is more beneficial (as every method: DESIGN
    section 3). The derivation is the influence function's: for a loss
    ``l = -log p``, ``grad l_i = -(1 - p_i) grad f_i``, and TRAK replaces
    the curvature by the margin features' Gram matrix ``Phi^T Phi / n``.
    The paper's ``(Phi^T Phi)^-1`` is ``K^-1 / n`` (a positive scale that
    no ranking sees).

    ``lambda_m = damping * trace(Phi_m^T Phi_m / n) / proj_dim``: relative
    to the kernel's mean eigenvalue, so its meaning does not depend on the
    scale of the gradients. The kernel is factored once (Cholesky) and its
    condition number estimated (power and inverse iterations); when it
    exceeds ``1e10`` (or ``1 / eps`` of the gradients' dtype, if smaller),
    a ``UserWarning`` gives the exact one (``eigh``), and the solve is a
    pseudo-inverse (eigenvalues below ``proj_dim * eps * max`` dropped,
    ``eps`` of the gradients' dtype).

    ``Phi`` is never held: one pass over the rows (per-row margin gradients
    of a chunk times ``R``) accumulates ``Phi^T Phi``, and a second,
    forward-mode pass computes ``phi_i . w = <grad f_i, R w>`` with
    ``w = K^-1 phi_J``; a forward pass gives ``f_i`` (so ``Q_i``). Memory: one
    chunk's per-row gradients (at most ``batch_size`` rows and ``2**25``
    entries), ``R`` (``P x proj_dim``, or a block of it at a time beyond
    ``2**26`` entries) and ``proj_dim x proj_dim``. Any objective works: its
    gradient is projected like a row's.

    Parameters
    ----------
    proj_dim : int, default=512
        Dimension of the projection (the paper uses 512 to 20,480), at most
        the number of parameters ``P``: a larger one is capped at ``P`` (the
        projected gradients span at most ``P`` dimensions, so more columns
        add no information, only a singular kernel and cost). The
        dimension used is ``proj_dim_``.
    n_members : int, default=1
        Number of members: the last ``n_members`` recorded checkpoints (all
        of them when there are fewer), or the fitted model and
        ``n_members - 1`` dropout copies of it (see :class:`IPEnsemble`).
        Each member has a projection of its own.
    ensemble : {"auto", "checkpoints", "dropout"}, default="auto"
        Where the members come from: "auto" takes checkpoints when the
        model has them, else dropout copies. The paper's members are
        independently trained models: give their parameters as the
        model's checkpoints, the fitted model's own among them
        (``as_torch_model(module, loss=..., checkpoints=[Checkpoint(params_k,
        1.0), ...])``, :class:`~skinfluence.models.Checkpoint`). Checkpoints of
        one training run (``TracInCheckpoints``) and dropout copies of the
        fitted model are cheaper approximations of that ensemble.
    max_dropout : float, default=0.01
        The dropout members' largest dropout rate, as in :class:`IPEnsemble`.
    damping : float, default=0.05
        ``lambda / (trace(Phi^T Phi / n) / proj_dim)``: the damping relative
        to the kernel's mean eigenvalue. The paper has none; with
        ``proj_dim`` near the rank of the gradients (collinear features,
        ``proj_dim`` at the number of parameters) the undamped kernel is
        singular or nearly, and its inverse is rounding noise. 0 gives the
        pseudo-inverse, with a warning when the kernel is ill-conditioned.
        The default is the largest of 1e-3, 1e-2, 2e-2, 3e-2, 5e-2 and
        1e-1 at which TRAK with 5 members predicted retraining at least as
        well as dattri's (undamped) TRAK in all 8 cells of
        ``benchmarks/bench_counterfactual.py`` (development data: Adult's
        train subset and COMPAS; LogisticRegression and an MLP; validation
        loss and demographic-parity gap). More damping predicted better on
        the MLPs and worse where ``proj_dim = P`` on LogisticRegression. On
        held-out data (2,000 rows of Adult's test subset, 100 halves) the
        default's LDS was 0.39-0.89 with one member against dattri's
        0.35-0.87, cell by cell at least as high.

    Attributes
    ----------
    proj_dim_ : int
        The dimension of the projection used by the last :meth:`score` (or
        :meth:`score_relabel`): ``min(proj_dim, P)``.

    See Also
    --------
    InfluenceFunction : ``<(C + lambda I)^-1 grad J, grad l_i>`` with the
        model's own curvature, solved by CG.
    IPEnsemble : the dropout members.

    Notes
    -----
    With ``proj_dim >= P``, one member and ``damping=0``, the projection is
    invertible on the gradients' span and ``s_i = -(1 - p_i) grad f_i^T
    (G^T G / n)^+ grad J``, ``G`` the ``n x P`` per-row margin gradients.
    Only classifiers whose outputs give class probabilities (cross-entropy,
    NLL, BCE-with-logits) have a margin.

    References
    ----------
    Park, Georgiev, Ilyas, Leclerc and Madry, "TRAK: Attributing Model
    Behavior at Scale", ICML 2023 (Algorithm 1).

    Examples
    --------
    A logistic regression (5 parameters) with ``proj_dim=5`` and no
    damping is the unprojected formula: the margin gradient of row ``i`` is
    ``+-[x_i, 1]``:

    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import TRAK, compute_influence
    >>> from skinfluence.models import as_torch_model
    >>> from skinfluence.objectives import Utility
    >>> X, y = make_classification(n_samples=80, n_features=4, n_informative=4,
    ...                            n_redundant=0, random_state=0)
    >>> clf = LogisticRegression().fit(X[:60], y[:60])
    >>> s = compute_influence(clf, X[:60], y[:60], X[60:], y[60:],
    ...                       method=TRAK(proj_dim=5, damping=0.0), random_state=0)
    >>> model = as_torch_model(clf)
    >>> G = np.c_[X[:60], np.ones(60)] * np.where(y[:60] == 1, 1.0, -1.0)[:, None]
    >>> g = Utility().bind(model, X[60:], y[60:]).gradient(model.params, batch_size=64)
    >>> g = np.concatenate([g["weight"].ravel(), g["bias"].ravel()])
    >>> p = clf.predict_proba(X[:60])[np.arange(60), y[:60]]
    >>> expected = -(G @ np.linalg.solve(G.T @ G / 60, g)) * (1 - p)
    >>> bool(np.allclose(s, expected, rtol=1e-4, atol=1e-6))
    True

    A larger ``proj_dim`` is capped at the 5 parameters (the fitted
    ``proj_dim_``), so the default 512 gives the same scores:

    >>> trak = TRAK(damping=0.0)
    >>> J = Utility().bind(model, X[60:], y[60:])
    >>> s512 = trak.score(model, J, model.prepare_X(X[:60]), model.prepare_y(y[:60]),
    ...                   batch_size=64, random_state=0)
    >>> trak.proj_dim_, bool(np.allclose(s512.numpy(), expected, rtol=1e-4, atol=1e-6))
    (5, True)
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
        damping: float = 0.05,
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

    def score(self, model, objective, X, y, *, batch_size, random_state=None, **kwargs):
        """Scores of the rows ``X`` (see :meth:`Method.score`)."""
        return self._scores(model, objective, X, y, [y], batch_size, random_state)[0]

    def score_relabel(
        self,
        model,
        objective,
        X,
        y,
        *,
        n_classes,
        batch_size,
        random_state=None,
        **kwargs,
    ) -> Tensor:
        """Scores of the rows ``X`` were each labelled with each class.

        Entry ``[c, i]`` is row ``i``'s score with label ``c``: its margin
        gradient and ``Q`` at ``c``, everything else (the kernels, the
        projections, ``phi_J``, the members) at the true labels ``y``, once.
        One forward-mode pass per class and member.

        Parameters
        ----------
        model, objective, X, y, batch_size, random_state
            As in :meth:`Method.score`.
        n_classes : int
            The number of classes (labels ``0 .. n_classes - 1``).
        **kwargs
            Unused (TRAK does not read the validation rows).

        Returns
        -------
        Tensor of shape (n_classes, n_rows)
            Row ``y_i`` of column ``i`` is :meth:`score`'s ``s_i`` (same
            ``random_state``).
        """
        if int(n_classes) < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}.")
        labels = [torch.full_like(y, c) for c in range(int(n_classes))]
        return torch.stack(
            self._scores(model, objective, X, y, labels, batch_size, random_state)
        )

    def _scores(self, model, objective, X, y, labels, batch_size, random_state):
        """Scores with each label vector of ``labels``; kernels at ``y``."""
        self.validate()
        self.check_checkpoints(model)
        margin = margin_model(model)
        seed = derive_seed(random_state)
        members = self.members(model, seed)
        self.proj_dim_ = k = min(int(self.proj_dim), tree.n_params(model.params))
        dots = [0.0] * len(labels)
        qs = [0.0] * len(labels)
        for m, params in enumerate(progress(members, desc="TRAK members")):
            projection = GaussianProjection(params, k, (seed + 7919 * (m + 1)) % 2**31)
            direction = _direction(
                margin, objective, params, X, y, projection, self.damping, batch_size
            )
            for j, lab in enumerate(labels):
                d, q = _row_factors(margin, params, direction, X, lab, batch_size)
                dots[j] = dots[j] + d
                qs[j] = qs[j] + q
        M = len(members)
        return [-(d / M) * (q / M) for d, q in zip(dots, qs, strict=True)]


def margin_model(model):
    """``model`` with the margin ``f = log(p_y / (1 - p_y))`` as its row "loss".

    A shallow copy (the module and parameters are shared) whose
    ``row_loss`` is the margin, so that every row kernel (per-row
    gradients, forward-mode products) takes margins instead of losses.
    """
    if model.output == "other":
        raise TypeError(
            "method='trak' needs class probabilities (the margin "
            "log(p / (1 - p)) of each row's label), and this model's loss is "
            "not cross-entropy, NLL or BCE-with-logits."
        )
    out = copy.copy(model)
    out._row_loss = functools.partial(_margin, model.log_proba_from_outputs)
    return out


def _margin(log_proba, outputs: Tensor, y: Tensor) -> Tensor:
    """``log p_y - log(1 - p_y)`` per row, ``1 - p_y`` as the others' logsumexp."""
    lp = log_proba(outputs)
    # the label's column (a comparison, not one_hot: it runs under vmap)
    mine = torch.arange(lp.shape[-1], device=lp.device) == y.long()[:, None]
    others = torch.logsumexp(lp.masked_fill(mine, float("-inf")), dim=-1)
    return lp.gather(-1, y.long()[:, None])[:, 0] - others


def _direction(margin, objective, params, X, y, projection, damping, batch_size):
    """``R K^-1 R^T grad J``, ``K = Phi^T Phi / n + lambda I``, for one member."""
    k = projection.k
    gram = torch.zeros(k, k, dtype=torch.float64, device=margin.device)
    for phi in projected_gradients(margin, params, X, y, projection, batch_size):
        phi = phi.to(torch.float64)
        gram += phi.T @ phi
    gram /= max(len(X), 1)
    phi_J = projection.project(objective.gradient(params, batch_size=batch_size))
    w = damped_solve(gram, phi_J.to(torch.float64), damping, margin.dtype)
    return projection.lift(w)


def damped_solve(gram: Tensor, b: Tensor, damping: float, dtype) -> Tensor:
    """``(gram + lambda I)^+ b``, ``lambda = damping * trace(gram) / k``; warns if ill-conditioned.

    Parameters
    ----------
    gram : Tensor of shape (k, k)
        Symmetric positive semi-definite (float64).
    b : Tensor of shape (k,)
    damping : float
        Relative to the mean eigenvalue ``trace(gram) / k``.
    dtype : torch.dtype
        The dtype ``gram`` was computed from: its ``1 / eps`` caps the
        condition number accepted without a warning, and eigenvalues below
        ``k * eps * max`` are rounding, dropped by the pseudo-inverse.

    Returns
    -------
    Tensor of shape (k,)

    Examples
    --------
    >>> import torch
    >>> from skinfluence.methods._trak import damped_solve
    >>> A = torch.tensor([[2.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    >>> damped_solve(A, torch.ones(2, dtype=torch.float64), 0.5, torch.float64)  # lambda = 1.5
    tensor([0.2857, 0.1818], dtype=torch.float64)
    """
    k = gram.shape[0]
    lam = float(damping) * float(torch.diagonal(gram).sum()) / k
    damped = gram + lam * torch.eye(k, dtype=gram.dtype, device=gram.device)
    limit = min(MAX_CONDITION, 1.0 / torch.finfo(dtype).eps)
    L, info = torch.linalg.cholesky_ex(damped)
    if int(info) == 0 and _condition_estimate(damped, L) <= limit:
        return torch.cholesky_solve(b[:, None], L)[:, 0]
    evals, evecs = torch.linalg.eigh(damped)
    top, low = float(evals[-1]), float(evals[0])
    cond = top / low if low > 0 else float("inf")
    if cond > limit:
        warnings.warn(
            f"TRAK's kernel Phi^T Phi / n + lambda I is ill-conditioned: "
            f"condition number {cond:.3g} (largest eigenvalue {top:.3g}, "
            f"smallest {low:.3g}, proj_dim={k}, damping={damping:g} -> "
            f"lambda={lam:.3g}); its inverse is a pseudo-inverse and the scores "
            "are sensitive to rounding. Raise damping (default 0.05) or lower "
            "proj_dim below the rank of the gradients.",
            UserWarning,
            stacklevel=4,
        )
    keep = evals > k * torch.finfo(dtype).eps * max(top, 0.0)
    inv = torch.where(keep, 1.0 / torch.where(keep, evals, 1.0), 0.0)
    return evecs @ (inv * (evecs.T @ b))


def _condition_estimate(A: Tensor, L: Tensor, iters: int = 30) -> float:
    """``lambda_max / lambda_min`` of ``A = L L^T`` by power and inverse iterations.

    Rayleigh quotients after ``iters`` steps of each: ``O(iters k^2)``
    where an eigendecomposition is ``O(k^3)``. They bound the extreme
    eigenvalues from inside, so the estimate is at most the condition
    number; a kernel flagged by it gets the exact one (``eigh``).
    """
    top = low = torch.ones(A.shape[0], dtype=A.dtype, device=A.device)
    for _ in range(iters):
        top = A @ top
        top = top / top.norm()
        low = torch.linalg.solve_triangular(L, low[:, None], upper=False)
        low = torch.linalg.solve_triangular(L.mT, low, upper=True)[:, 0]
        low = low / low.norm()
    return float(top @ A @ top) / float(low @ A @ low)


def _row_factors(margin, params, direction, X, labels, batch_size):
    """``<grad f_i, direction>`` and ``Q_i = 1 - p_i``, the margins at ``labels``."""
    dots = grad_dot(margin, params, direction, X, labels, batch_size)
    q = torch.sigmoid(-row_losses(margin, params, X, labels, batch_size))
    return dots.to(torch.float64), q.to(torch.float64)
