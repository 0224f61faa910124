"""The documentation builds without a warning, the gallery included.

The sources (docs/, examples/, benchmarks/results/) are copied to a temporary
directory and built there with ``sphinx-build -W --keep-going -b html``; the
gallery's examples run at reduced size (``SKINFLUENCE_EXAMPLE_QUICK=1``).
Skipped without the ``docs`` extra.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

for _name in ("sphinx", "numpydoc", "sphinx_gallery", "matplotlib"):
    pytest.importorskip(_name, reason="the docs extra is not installed")

ROOT = Path(__file__).resolve().parents[1]
BUILD_OUTPUTS = shutil.ignore_patterns(
    "_build", "generated", "auto_examples", "sg_execution_times.rst", "__pycache__"
)


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    src = tmp_path_factory.mktemp("docs_src")
    for part in ("docs", "examples", "benchmarks/results"):
        shutil.copytree(ROOT / part, src / part, ignore=BUILD_OUTPUTS)
    out = src / "_html"
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", SKINFLUENCE_EXAMPLE_QUICK="1", OMP_NUM_THREADS="1")
    env.pop("SKINFLUENCE_GALLERY_PATTERN", None)
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html"]
    cmd += ["-d", str(src / "_doctrees"), str(src / "docs"), str(out)]
    proc = subprocess.run(
        cmd, cwd=src, env=env, capture_output=True, text=True, timeout=170
    )
    assert proc.returncode == 0, proc.stderr[-6000:] or proc.stdout[-6000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-6000:]
    return out


def text_of(path: Path) -> str:
    return re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))


def test_pages_are_built(html):
    for page in ("index", "user_guide", "signals", "api", "benchmarks"):
        assert (html / f"{page}.html").is_file(), page


def test_api_pages_cover_the_public_names(html):
    import skinfluence

    for name in skinfluence.__all__:
        if name.startswith("__"):
            continue
        page = html / "generated" / f"skinfluence.{name}.html"
        if name == "compute_signals":  # documented where it lives
            page = html / "generated" / "skinfluence.signals.compute_signals.html"
        assert page.is_file(), name
    for name in ("plot_influence", "plot_pruning_curve"):
        assert (html / "generated" / f"skinfluence.plotting.{name}.html").is_file()


def test_gallery_ran_the_examples(html):
    examples = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
    for stem in examples:
        assert (html / "auto_examples" / f"{stem}.html").is_file(), stem
        assert list((html / "_images").glob(f"sphx_glr_{stem}_*.png")), stem
    page = text_of(html / "auto_examples" / "plot_fairness_adult.html")
    assert "demographic-parity gap" in page and "gap change" in page


def test_benchmark_tables_are_included(html):
    page = (html / "benchmarks.html").read_text(encoding="utf-8")
    for md in (ROOT / "benchmarks" / "results").glob("*.md"):
        if md.stem.endswith("_quick"):
            continue
        assert f"benchmarks/results/{md.name}" in page, md.name
    assert page.count("<table") >= 3
