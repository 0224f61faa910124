"""Every example in examples/ runs, at reduced size, and draws a figure.

Each runs in a fresh interpreter (as a user runs it) with matplotlib's Agg
backend and ``SKINFLUENCE_EXAMPLE_QUICK=1``, which the examples read to
shrink their data.
"""

from __future__ import annotations

import ast
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))
MAIN_JOB = EXAMPLES / "plot_fairness_adult.py"
#: what the main job saves when run as a script (the README's command)
HISTOGRAM = "influence_histogram.png"

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


def run_example(script, cwd, runner=RUNNER, **env):
    proc = subprocess.run(
        [sys.executable, "-c", runner, str(script)],
        cwd=cwd,
        env={**quick_env(), **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def figures_drawn(stdout):
    return int(stdout.rsplit("FIGURES", 1)[1])


def assert_is_the_histogram_png(path):
    """A PNG of one default-size figure at 100 dpi, with something drawn."""
    import matplotlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    w_in, h_in = matplotlib.rcParams["figure.figsize"]
    assert (width, height) == (round(100 * w_in), round(100 * h_in))
    assert len(data) > 10_000  # an empty white figure of that size is ~3 kB


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_runs(script, tmp_path):
    stdout = run_example(script, tmp_path)
    assert figures_drawn(stdout) >= 1, "an example draws at least one figure"
    if script != MAIN_JOB:
        assert list(tmp_path.iterdir()) == [], "examples leave no files behind"
        return
    # the main job, run as a script, saves its histogram and says where
    assert [p.name for p in tmp_path.iterdir()] == [HISTOGRAM]
    assert_is_the_histogram_png(tmp_path / HISTOGRAM)
    saved = (tmp_path / HISTOGRAM).resolve()
    assert f"histogram of the scores saved to {saved}\n" in stdout
    # the thread count is pinned and printed, before the numbers
    assert stdout.startswith("torch threads: 1\n")


def test_main_job_saves_where_the_environment_says(tmp_path):
    out, cwd = tmp_path / "adult.png", tmp_path / "run"
    cwd.mkdir()
    stdout = run_example(MAIN_JOB, cwd, SKINFLUENCE_EXAMPLE_FIGURE=str(out))
    assert list(cwd.iterdir()) == []
    assert_is_the_histogram_png(out)
    assert f"saved to {out.resolve()}\n" in stdout


def test_main_job_under_sphinx_gallery_draws_and_saves_nothing(tmp_path):
    """The gallery (same process as sphinx_gallery) shows the figure itself."""
    runner = (
        "import sys, types\nsys.modules['sphinx_gallery'] = types.ModuleType('x')\n"
    )
    stdout = run_example(MAIN_JOB, tmp_path, runner + RUNNER)
    assert figures_drawn(stdout) == 1
    assert list(tmp_path.iterdir()) == []
    assert "saved to" not in stdout


def test_main_job_runs_without_matplotlib(tmp_path):
    """The README's first command installs no extra: the main job still runs."""
    blocked = (
        "import runpy, sys\n"
        "sys.modules['matplotlib'] = sys.modules['matplotlib.pyplot'] = None\n"
        "runpy.run_path(sys.argv[1], run_name='__main__')\n"
    )
    stdout = run_example(MAIN_JOB, tmp_path, blocked)
    assert "gap change" in stdout
    assert "skinfluence[plot]" in stdout
    assert list(tmp_path.iterdir()) == [], "no figure, no file"
