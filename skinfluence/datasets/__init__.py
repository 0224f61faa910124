"""Data sets: offline loaders for the bundled Adult and COMPAS data."""

from ._corruption import flip_labels, inject_anomalies
from ._loaders import load_adult, load_compas

__all__ = ["flip_labels", "inject_anomalies", "load_adult", "load_compas"]
