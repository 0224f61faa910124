"""The documentation builds without a warning, the gallery included.

The sources (docs/, examples/, benchmarks/results/) are copied to a temporary
directory and built there with ``sphinx-build -W --keep-going -b html``; the
gallery's examples run at reduced size (``SKINFLUENCE_EXAMPLE_QUICK=1``).
The build's tests are skipped without the ``docs`` extra; the docstring
tests run always.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_OUTPUTS = shutil.ignore_patterns(
    "_build", "generated", "auto_examples", "sg_execution_times.rst", "__pycache__"
)


def needs_docs_extra():
    for name in ("sphinx", "numpydoc", "sphinx_gallery", "matplotlib"):
        pytest.importorskip(name, reason="the docs extra is not installed")


def docs_ext():
    """The documentation's helper module (docs/_ext/skinfluence_docs.py)."""
    needs_docs_extra()
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import skinfluence_docs
    finally:
        sys.path.pop(0)
    return skinfluence_docs


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    needs_docs_extra()
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
        cmd, cwd=src, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-6000:] or proc.stdout[-6000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-6000:]
    return out


def text_of(path: Path) -> str:
    return re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))


def test_pages_are_built(html):
    for page in ("index", "user_guide", "choosing", "signals", "api", "benchmarks"):
        assert (html / f"{page}.html").is_file(), page


def test_choosing_page_links_its_numbers_to_the_results(html):
    page = (html / "choosing.html").read_text(encoding="utf-8")
    rst = (ROOT / "docs" / "choosing.rst").read_text(encoding="utf-8")
    quoted = re.findall(r":bench:`[^`<]+<([\w-]+)>`", rst)
    assert len(quoted) >= 20
    for stem in set(quoted):
        assert f'href="benchmarks.html#benchmark-{stem}"' in page, stem
    assert ":bench:" not in text_of(html / "choosing.html")


def test_quoted_numbers_are_matched_whole():
    found = docs_ext().quoted_number_found
    text = "DP 0.193 -> 0.082 (57% fall), -0.50 points; -13\nto -21% at 10%"
    for number in ("0.082", "57%", "-0.50", "0.193", "-13 to -21%", "10%"):
        assert found(number, text), number
    for number in ("0.08", "7%", "0.50", "0.19", "0.5", "-0.5", "1%", "13"):
        assert not found(number, text), number


def test_method_docstrings_name_every_registered_method():
    """The shared ``method`` text lists every key fit accepts, read after import.

    A method registered after the docstring was built (by a module imported
    later) would be missing: this reads the registry as a user's session has it.
    """
    import skinfluence
    from skinfluence.methods import METHODS

    # the package's own keys (tests register methods of their own)
    keys = [k for k in METHODS.keys() if METHODS._classes[k].__module__.startswith("skinfluence")]
    assert {"ip", "trak", "influence_function", "signal_aum"} <= set(keys)
    for est in (skinfluence.InfluenceFilter, skinfluence.InfluenceSampler):
        doc = est.__doc__
        section = doc[doc.index("    method : ") : doc.index("    prune_ratio : ")]
        named = re.findall(r'``"(\w+)"``', section)
        assert sorted(named) == sorted(keys), est.__name__


def test_api_pages_cover_the_public_names(html):
    import skinfluence

    for name in skinfluence.__all__:
        if name.startswith("__"):
            continue
        page = html / "generated" / f"skinfluence.{name}.html"
        if name == "compute_signals":  # documented where it lives
            page = html / "generated" / "skinfluence.signals.compute_signals.html"
        if name in ("as_torch_model", "TorchModel", "Checkpoint"):
            page = html / "generated" / f"skinfluence.models.{name}.html"
        assert page.is_file(), name
    for name in ("plot_influence", "plot_pruning_curve", "plot_fairness_front"):
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


# ------------------------------------------------ Markdown tables for the docs
MARKDOWN = """# Speed *benchmark*

Generated by `bench.py` on x86_64 with **2 CPUs**; see [the README](https://example.org/a_b).

> **PARTIAL**: 2 of 60 groups.

| method | seconds | note |
|---|---:|:---:|
| ip_ensemble | 0.511 | a \\| b, *x* |
| tracin | | **PASS** |

- first item with `code_` and a_b_
  continued here
- second, 3*4*5

## Targets

1. one
2. two

```bash
python bench.py --quick
```
"""


def _doctree(rst: str):
    from docutils.core import publish_doctree

    messages = []
    tree = publish_doctree(
        rst,
        settings_overrides={
            "report_level": 1,
            "halt_level": 5,
            "warning_stream": False,
        },
    )
    for node in tree.findall():
        if node.tagname == "system_message" and int(node["level"]) >= 2:
            messages.append(node.astext())
    return tree, messages


def test_markdown_to_rst_parses_cleanly_and_keeps_the_text():
    markdown_to_rst = docs_ext().markdown_to_rst
    rst = markdown_to_rst(MARKDOWN, level=0)
    tree, messages = _doctree(rst)
    assert messages == [], rst
    text = tree.astext()
    for piece in ("x86_64", "ip_ensemble", "a | b", "code_", "a_b_", "3*4*5", "0.511"):
        assert piece in text, (piece, rst)
    tables = [n for n in tree.findall() if n.tagname == "table"]
    assert len(tables) == 1
    rows = [n for n in tables[0].findall() if n.tagname == "row"]
    assert len(rows) == 3 and all(
        len([c for c in r.children if c.tagname == "entry"]) == 3 for r in rows
    )
    assert [n.astext() for n in tree.findall() if n.tagname == "strong"] == [
        "2 CPUs",
        "PARTIAL",
        "PASS",
    ]
    assert [n.astext() for n in tree.findall() if n.tagname == "title"] == [
        "Speed benchmark",
        "Targets",
    ]
    assert any(
        n.tagname == "reference" and n.get("refuri") == "https://example.org/a_b"
        for n in tree.findall()
    )
    assert any(n.tagname == "literal_block" for n in tree.findall())
    assert any(n.tagname == "enumerated_list" for n in tree.findall())


def test_texts_that_skip_heading_levels_share_one_page():
    markdown_to_rst = docs_ext().markdown_to_rst
    first = markdown_to_rst("# A\n\n## B\n\n#### C\n\ntext c\n", level=1)
    second = markdown_to_rst("# D\n\n## E\n\n### F\n\ntext f\n", level=1)
    page = "Page\n====\n\n" + first + "\n" + second
    tree, messages = _doctree(page)
    assert messages == [], page
    sections = {
        n.children[0].astext(): len(list(_ancestors(n)))
        for n in tree.findall()
        if n.tagname == "section"
    }
    # C sits under B as F sits under E: the skipped level is closed up
    assert sections["C"] == sections["F"] == sections["B"] + 1 == sections["A"] + 2


def _ancestors(node):
    while node.parent is not None and node.parent.tagname == "section":
        node = node.parent
        yield node
