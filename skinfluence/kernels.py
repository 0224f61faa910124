"""Kernels over the rows, for writing scoring methods.

Every built-in method reduces to three kernels over the training rows,
taken in chunks of ``batch_size`` rows so that memory is
``O(batch_size x P)`` for ``P`` parameters, never ``O(n x P)``:

1. ``v = grad J(theta)``, the gradient of a scalar summed over row chunks:
   :func:`chunked_gradient` (``objective.gradient(params)`` is this over the
   validation rows).
2. ``<grad l_i(theta), v>`` for every row ``i``: :func:`grad_dot`, one
   forward-mode pass (``torch.func.jvp`` of the per-row losses along ``v``)
   that never forms a per-row gradient. :func:`grad_dot_classes` is the
   same with every row labelled each class in turn (relabel scores).
3. ``||grad l_i(theta)||^2`` for every row: :func:`grad_sq_norms`, in closed
   form for networks of ``nn.Linear`` layers (``||a_i||^2 ||d_i||^2`` per
   layer), else from :func:`per_row_gradients` (``vmap(grad)``).
   :func:`row_gradients` makes that choice, once, for every quantity built
   from per-row gradients (norms, and the ``<g_i, g_j>`` blocks of the
   signals' influence matrix).

Curvature of the training objective as operators on parameter dicts:
:class:`Hessian` (forward-over-reverse products) and :class:`GGN` (the
generalized Gauss-Newton ``J^T H_out J``, positive semi-definite), and
:class:`Damped` (``A + damping I``) of either. The solvers are objects
wrapping any operator, so every curvature composes with every solver:
:class:`ExactInverse`, :class:`CGInverse` (records a :class:`CGInfo`),
:class:`LiSSAInverse`. Short forms: :func:`make_hvp`,
:func:`hessian_matrix`, :func:`dense_matrix`, :func:`exact_solve`,
:func:`cg` (warns when it stops short), :func:`conjugate_gradient`,
:func:`lissa`, :func:`top_eigenvalue`, :func:`trace_estimate`, :func:`curvature_scale`.

Projection: :class:`GaussianProjection`, a seeded Johnson-Lindenstrauss
projection of parameter vectors and of per-row gradients (TRAK).

Plumbing: :func:`row_chunks` (chunk slices; fewer rows per chunk for wide
sparse data), :func:`to_device` (a chunk on the model's device),
:func:`derive_seed` and :func:`torch_generator` (seeds from a scikit-learn
``random_state``). Training rows reach a method as a CPU tensor, or as
:class:`SparseRows` for sparse input: index them only through
:func:`to_device`, and both work.

Examples
--------
A method scoring each row by the cosine between ``grad J`` and its loss
gradient, from two kernels and no per-row gradient:

>>> import torch
>>> from sklearn.datasets import make_classification
>>> from sklearn.linear_model import LogisticRegression
>>> from skinfluence import Method, compute_influence
>>> from skinfluence.kernels import grad_dot, grad_sq_norms
>>> class GradientCosine(Method):
...     _key = "gradient_cosine_doc"
...
...     def score(self, model, objective, X, y, *, batch_size, random_state=None):
...         v = objective.gradient(model.params, batch_size=batch_size)
...         v_norm = torch.sqrt(sum((g**2).sum() for g in v.values()))
...         dot = grad_dot(model, model.params, v, X, y, batch_size)
...         norm = grad_sq_norms(model, model.params, X, y, batch_size).sqrt()
...         return dot / (norm * v_norm + 1e-12)
>>> X, y = make_classification(n_samples=120, random_state=0)
>>> clf = LogisticRegression().fit(X[:100], y[:100])
>>> s = compute_influence(clf, X[:100], y[:100], X[100:], y[100:],
...                       method=GradientCosine())
>>> bool((abs(s) <= 1).all())
True

Register the class with ``skinfluence.methods.METHODS.register`` to use its
key as ``method="..."`` (see the gallery's custom-method example).
"""

from ._curvature import (
    GGN,
    CGInfo,
    CGInverse,
    Curvature,
    Damped,
    ExactInverse,
    Hessian,
    LiSSAInverse,
    MatrixOperator,
    cg,
    conjugate_gradient,
    curvature_scale,
    dense_matrix,
    exact_solve,
    ggn_split,
    hessian_matrix,
    lissa,
    make_hvp,
    top_eigenvalue,
    trace_estimate,
)
from ._kernels import (
    ClosedFormGradients,
    GaussianProjection,
    VmapGradients,
    chunk_rows,
    chunked_gradient,
    chunks,
    derive_seed,
    grad_dot,
    grad_dot_classes,
    grad_sq_norms,
    per_row_gradients,
    projected_gradients,
    row_chunks,
    row_gradients,
    row_losses,
    to_device,
    torch_generator,
)
from ._sparse import SparseRows

__all__ = [
    "GGN",
    "CGInfo",
    "CGInverse",
    "ClosedFormGradients",
    "Curvature",
    "Damped",
    "ExactInverse",
    "GaussianProjection",
    "Hessian",
    "LiSSAInverse",
    "MatrixOperator",
    "SparseRows",
    "VmapGradients",
    "cg",
    "chunk_rows",
    "chunked_gradient",
    "chunks",
    "conjugate_gradient",
    "curvature_scale",
    "dense_matrix",
    "derive_seed",
    "exact_solve",
    "ggn_split",
    "grad_dot",
    "grad_dot_classes",
    "grad_sq_norms",
    "hessian_matrix",
    "lissa",
    "make_hvp",
    "per_row_gradients",
    "projected_gradients",
    "row_chunks",
    "row_gradients",
    "row_losses",
    "to_device",
    "top_eigenvalue",
    "trace_estimate",
    "torch_generator",
]
