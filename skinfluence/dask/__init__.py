"""Influence on Dask: score and clean training sets larger than memory.

``skinfluence.compute_influence`` takes row-chunked dask Arrays and
DataFrames and returns lazy scores aligned with the rows; this module holds
that function with its Dask-only parameters, and the exact selection and
Parquet writing of the cleaned rows. Needs the ``dask`` extra
(``pip install skinfluence[dask]``). See the "Beyond one machine" page of
the documentation for the workflow.

Its parts: ``_spec`` (the :class:`ScoringSpec` every block scores with),
``_inputs`` (the rows as dask collections; the Hessian rows on the client),
``_client`` (the client's work, once, and the lazy scores), ``_selection``
(the exact k lowest, by tree reductions), ``_write`` (the cleaned rows to
Parquet) and ``_relabel`` (every row under every class).
"""

from ._client import compute_influence
from ._relabel import relabel_effects
from ._selection import kth_smallest, lowest_mask
from ._spec import ScoringSpec
from ._write import CleanedRows, write_cleaned

__all__ = [
    "CleanedRows",
    "ScoringSpec",
    "compute_influence",
    "kth_smallest",
    "lowest_mask",
    "relabel_effects",
    "write_cleaned",
]
