"""Data sets: offline loaders for the bundled Adult and COMPAS data."""

from ._loaders import load_adult, load_compas

__all__ = ["load_adult", "load_compas"]
