"""Curvature of the training objective, as operators, and their inverses.

Public through :mod:`skinfluence.kernels`. Split as curvlinops splits it,
operators apart from inverses:

- ``_operator``: symmetric linear operators on parameter dicts (a callable
  ``v -> A v`` with a ``like`` template): :class:`Damped` (``A + damping I``),
  :class:`MatrixOperator`, and what is read off any of them
  (:func:`dense_matrix`, :func:`top_eigenvalue`, :func:`trace_estimate`);
- ``_hessian``: the curvature of the training objective ``mean_i l_i(theta)
  + sum_p lambda_p / 2 ||theta_p||^2`` on rows (:class:`Curvature`) and the
  :class:`Hessian` (forward-over-reverse products), with the short forms
  :func:`make_hvp` and :func:`hessian_matrix`;
- ``_ggn``: the generalized Gauss-Newton ``J^T H_out J`` (:class:`GGN`,
  :func:`ggn_split`), the curvature's scale (:func:`curvature_scale`, its
  trace per parameter) and the curvatures by name (``CURVATURES``);
- ``_inverse``: the solvers, objects wrapping any operator so that every
  curvature composes with every solver (:class:`ExactInverse`,
  :class:`CGInverse` with its :class:`CGInfo`, :class:`LiSSAInverse`), and
  the short forms :func:`exact_solve`, :func:`conjugate_gradient`,
  :func:`cg` and :func:`lissa`.
"""

from ._ggn import CURVATURES, GGN, curvature_scale, ggn_split
from ._hessian import Curvature, Hessian, hessian_matrix, make_hvp
from ._inverse import (
    CGInfo,
    CGInverse,
    ExactInverse,
    LiSSAInverse,
    cg,
    conjugate_gradient,
    exact_solve,
    lissa,
)
from ._operator import (
    TRACE_EXACT_MAX_PARAMS,
    Damped,
    MatrixOperator,
    Matvec,
    dense_matrix,
    top_eigenvalue,
    trace_estimate,
)

__all__ = [
    "CURVATURES",
    "GGN",
    "TRACE_EXACT_MAX_PARAMS",
    "CGInfo",
    "CGInverse",
    "Curvature",
    "Damped",
    "ExactInverse",
    "Hessian",
    "LiSSAInverse",
    "MatrixOperator",
    "Matvec",
    "cg",
    "conjugate_gradient",
    "curvature_scale",
    "dense_matrix",
    "exact_solve",
    "ggn_split",
    "hessian_matrix",
    "lissa",
    "make_hvp",
    "top_eigenvalue",
    "trace_estimate",
]
