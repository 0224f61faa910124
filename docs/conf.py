"""Sphinx configuration of the skinfluence documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (needs
the ``docs`` extra). ``SKINFLUENCE_EXAMPLE_QUICK=1`` runs the gallery's
examples at reduced size; ``SKINFLUENCE_GALLERY_PATTERN`` (a regular
expression on the example paths, default ``/plot_``) selects the examples to
run, the others are shown without output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

import skinfluence  # noqa: E402

# -- project ------------------------------------------------------------------
project = "skinfluence"
author = "the skinfluence developers"
copyright = "the skinfluence developers, BSD-3-Clause"  # noqa: A001
release = skinfluence.__version__
version = release

# -- general ------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "skinfluence_docs",  # docs/_ext: the benchmark-results directive
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "_ext"]
root_doc = "index"
nitpicky = False
default_role = "literal"

autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc Parameters sections say it
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- gallery ------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": os.environ.get("SKINFLUENCE_GALLERY_PATTERN", "/plot_"),
    "within_subsection_order": "skinfluence_docs.ExampleOrder",
    "reset_modules": ("matplotlib", "skinfluence_docs.reset_state"),
    "abort_on_example_error": True,
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skinfluence",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
}

# -- html ---------------------------------------------------------------------
try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:  # the docs extra installs it; fall back to Sphinx's own
    html_theme = "alabaster"
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
    }
html_title = f"skinfluence {release}"
html_static_path: list[str] = []
html_show_sourcelink = False


# -- docstring fixes ----------------------------------------------------------
def _skip_request_setters(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_<method>_request`` methods.

    Their docstrings link into scikit-learn's glossary; the user guide
    explains metadata routing instead.
    """
    import re

    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_request_setters)
