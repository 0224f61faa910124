"""Influence on Dask: score and clean training sets larger than memory.

``skinfluence.compute_influence`` takes row-chunked dask Arrays and
DataFrames and returns lazy scores aligned with the rows; this module holds
that function with its Dask-only parameters, and the exact selection and
Parquet writing of the cleaned rows. Needs the ``dask`` extra
(``pip install skinfluence[dask]``). See the "Beyond one machine" page of
the documentation for the workflow.
"""

from ._dask import (
    CleanedRows,
    ScoringSpec,
    compute_influence,
    kth_smallest,
    lowest_mask,
    relabel_effects,
    write_cleaned,
)

__all__ = [
    "CleanedRows",
    "ScoringSpec",
    "compute_influence",
    "kth_smallest",
    "lowest_mask",
    "relabel_effects",
    "write_cleaned",
]
