"""Every example in examples/ runs, at reduced size, and draws a figure.

Each runs in a fresh interpreter (as a user runs it) with matplotlib's Agg
backend and ``SKINFLUENCE_EXAMPLE_QUICK=1``, which the examples read to
shrink their data.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))

RUNNER = (
    "import runpy, sys\n"
    "import matplotlib.pyplot as plt\n"
    "runpy.run_path(sys.argv[1], run_name='__main__')\n"
    "print('FIGURES', len(plt.get_fignums()))\n"
)


def quick_env():
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", SKINFLUENCE_EXAMPLE_QUICK="1", OMP_NUM_THREADS="1")
    return env


def test_the_examples_are_there():
    names = {p.name for p in SCRIPTS}
    assert {
        "plot_fairness_adult.py",
        "plot_prune_ratio_search.py",
        "plot_noisy_labels.py",
        "plot_robustness.py",
        "plot_custom_method.py",
    } <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_is_a_gallery_script(script):
    source = script.read_text()
    doc = ast.get_docstring(ast.parse(source), clean=False)
    assert doc is not None, "sphinx-gallery needs a docstring first"
    lines = doc.strip("\n").splitlines()
    assert len(lines) >= 3 and set(lines[1]) == {"="}
    assert len(lines[1]) == len(lines[0]), "the title underline must match the title"
    assert "\n# %%\n" in source
    assert "SKINFLUENCE_EXAMPLE_QUICK" in source


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_runs(script, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script)],
        cwd=tmp_path,
        env=quick_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    figures = int(proc.stdout.rsplit("FIGURES", 1)[1])
    assert figures >= 1, "an example draws at least one figure"
    assert list(tmp_path.iterdir()) == [], "examples leave no files behind"


def test_main_job_runs_without_matplotlib(tmp_path):
    """The README's first command installs no extra: the main job still runs."""
    blocked = (
        "import runpy, sys\n"
        "sys.modules['matplotlib'] = sys.modules['matplotlib.pyplot'] = None\n"
        "runpy.run_path(sys.argv[1], run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", blocked, str(EXAMPLES / "plot_fairness_adult.py")],
        cwd=tmp_path,
        env=quick_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "gap change" in proc.stdout
    assert "skinfluence[plot]" in proc.stdout
