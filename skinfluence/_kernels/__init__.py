"""The computational core (DESIGN section 4); public as :mod:`skinfluence.kernels`.

One module per thing the kernels compute:

- ``_rows``: row chunks (fewer rows per chunk for wide sparse data), a chunk
  on the model's device, seeds and torch generators from a ``random_state``;
- ``_gradients``: kernel 1, the gradient of a scalar summed over row chunks
  (:func:`chunked_gradient`), and kernel 2, forward-mode inner products
  ``<grad l_i, v>`` (:func:`grad_dot`, :func:`grad_dot_classes`), with the
  per-row losses;
- ``_per_row``: per-row gradients of a chunk, in closed form for networks of
  ``nn.Linear`` layers, else ``vmap(grad)``;
- ``_norms``: kernel 3, per-row gradient norms and Gram blocks, the closed
  form or ``vmap`` chosen once per model (:func:`row_gradients`);
- ``_projection``: seeded Johnson-Lindenstrauss projections (TRAK).

Hessian-vector products and their solvers are in ``_curvature``. Every name
is re-exported here, so ``from .._kernels import grad_dot`` reads from one
place whichever module defines it.
"""

from ._gradients import chunked_gradient, grad_dot, grad_dot_classes, row_losses
from ._norms import (
    ROW_GRADIENT_METHODS,
    ClosedFormGradients,
    VmapGradients,
    grad_sq_norms,
    row_gradients,
)
from ._per_row import (
    linear_factors,
    linear_layout,
    linear_row_gradients,
    per_row_gradients,
)
from ._projection import GaussianProjection, projected_gradients
from ._rows import (
    Params,
    Rows,
    all_finite,
    chunk_rows,
    chunks,
    derive_seed,
    in_functorch_transform,
    row_chunks,
    to_device,
    torch_generator,
)

__all__ = [
    "ROW_GRADIENT_METHODS",
    "ClosedFormGradients",
    "GaussianProjection",
    "Params",
    "Rows",
    "VmapGradients",
    "all_finite",
    "chunk_rows",
    "chunked_gradient",
    "chunks",
    "derive_seed",
    "grad_dot",
    "grad_dot_classes",
    "grad_sq_norms",
    "in_functorch_transform",
    "linear_factors",
    "linear_layout",
    "linear_row_gradients",
    "per_row_gradients",
    "projected_gradients",
    "row_chunks",
    "row_gradients",
    "row_losses",
    "to_device",
    "torch_generator",
]
