"""The README's code runs as written and prints what the README says it prints.

This file is the one reader of the README's conventions:

- Every ```python block runs. The blocks of one ``##`` section run in order
  in one fresh interpreter per section (a script in a temporary directory,
  started as ``python <script>``), so a block may use what an earlier block
  of its section defined, and nothing else.
- A printed block is the ```text block right after a marker line, either
  ``<!-- printed by the python block above -->`` (the stdout of that block,
  in its section's run) or ``<!-- printed by: python examples/<name>.py -->``
  (the stdout of that script as the README's first command runs it: from the
  repository's root, full size, without the optional ``plot`` extra).
- A printed block must be what its run prints: the words exactly (a run of
  spaces counts as one space) and the numbers within a tolerance that
  absorbs last-digit differences between machines (see :func:`differences`).

After a change of behaviour, rewrite every printed block with what this
machine prints, then review ``git diff README.md`` and the prose around it::

    python tests/test_readme.py --update

Without ``--update`` the script runs the same checks as the tests and
prints the differences. The runs start in parallel; together they take
about a minute on two cores.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(
    r"^<!-- printed by(?:: python (?P<script>\S+)| the python block above) -->\s*$"
)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
#: printed by a section's script after each of its blocks
_SENTINEL = "=====README-BLOCK-END====="
#: runs the README's first command (``python examples/<name>.py``) without the plot extra
_NO_PLOT_EXTRA = (
    "import runpy, sys\n"
    "sys.modules['matplotlib'] = sys.modules['matplotlib.pyplot'] = None\n"
    "sys.argv = [sys.argv[1]]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)
TIMEOUT = 600


@dataclass
class Block:
    section: str  # the ``##`` heading it sits under
    lang: str
    start: int  # index of the first line inside the fence
    stop: int  # index of the closing fence
    text: str
    source: str | None = None  # for a printed block: "above" or the script


def parse(text: str) -> list[Block]:
    """The fenced blocks of the README, printed blocks with their source."""
    lines = text.splitlines()
    blocks, section, marker, i = [], "", None, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        m = _MARKER.match(line)
        if m:
            marker = m.group("script") or "above"
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if j == len(lines):
                raise ValueError(f"README.md:{i + 1}: unclosed code fence")
            body = "\n".join(lines[i + 1 : j])
            if marker is not None and fence.group(1) != "text":
                raise ValueError(f"README.md:{i + 1}: a printed block is ```text")
            blocks.append(Block(section, fence.group(1), i + 1, j, body, marker))
            marker, i = None, j + 1
            continue
        if marker is not None and line.strip():
            raise ValueError(f"README.md:{i + 1}: text between a marker and its block")
        i += 1
    if marker is not None:
        raise ValueError("README.md: a marker at the end with no block after it")
    return blocks


def sections(blocks: list[Block]) -> dict[str, list[Block]]:
    """The python blocks of each section, in order."""
    out: dict[str, list[Block]] = {}
    for b in blocks:
        if b.lang == "python":
            out.setdefault(b.section, []).append(b)
    return out


def section_script(python_blocks: list[Block], epilogue: str = "") -> str:
    """One script: the blocks in order, a sentinel printed after each.

    The sentinel is printed only in the main process: workers that re-import
    the script (multiprocessing's spawn, a Dask cluster) print nothing.
    """
    guard = f"\nif __name__ == '__main__':\n    print({_SENTINEL!r}, flush=True)\n"
    parts = [b.text + "\n" + guard for b in python_blocks]
    if epilogue:
        parts.append("if __name__ == '__main__':\n" + textwrap.indent(epilogue, "    "))
    return "\n".join(parts)


def _env() -> dict:
    env = dict(os.environ)
    env.pop("SKINFLUENCE_EXAMPLE_QUICK", None)  # the README shows full-size runs
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    return env


def run_all(blocks: list[Block], epilogues: dict | None = None) -> dict:
    """Run every section and every script a printed block names, in parallel.

    Returns ``{("section", name): (returncode, [stdout per block], stderr),
    ("script", path): (returncode, stdout, stderr)}``.
    """
    epilogues = epilogues or {}
    jobs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, py) in enumerate(sections(blocks).items()):
            cwd = Path(tmp) / f"section{k}"
            cwd.mkdir()
            script = cwd / f"readme_section{k}.py"
            script.write_text(section_script(py, epilogues.get(name, "")))
            jobs["section", name] = [sys.executable, str(script)], cwd
        for b in blocks:
            if b.source not in (None, "above"):
                jobs["script", b.source] = (
                    [sys.executable, "-c", _NO_PLOT_EXTRA, b.source],
                    ROOT,
                )
        procs = {
            key: subprocess.Popen(
                argv,
                cwd=cwd,
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for key, (argv, cwd) in jobs.items()
        }
        out = {}
        for key, proc in procs.items():
            try:
                stdout, stderr = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
            if key[0] == "section":
                stdout = stdout.split(_SENTINEL + "\n")
            out[key] = (proc.returncode, stdout, stderr)
    return out


def printed(blocks: list[Block], runs: dict) -> dict[int, str]:
    """What each printed block's source printed, by the block's ``start``."""
    out = {}
    for i, b in enumerate(blocks):
        if b.source is None:
            continue
        if b.source != "above":
            out[b.start] = _clean(runs["script", b.source][1])
            continue
        above = [p for p in blocks[:i] if p.lang == "python"]
        if not above or above[-1].section != b.section:
            raise ValueError(
                f"README.md:{b.start}: no python block above in its section"
            )
        k = sections(blocks)[b.section].index(above[-1])
        out[b.start] = _clean(runs["section", b.section][1][k])
    return out


def _clean(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _tolerance(token: str) -> float:
    """Decimals within max(1e-3, two units of the last digit); integers within 0.5%.

    An integer below 200 must be equal. Larger counts (rows selected by a
    ranking of floats) may move by a few rows when a near-tie breaks the
    other way on another machine.
    """
    mantissa = re.split(r"[eE]", token)[0]
    if "." not in mantissa:
        return math.floor(0.005 * abs(int(mantissa)))
    decimals = len(mantissa.split(".")[1])
    return max(1e-3, 2 * 10.0**-decimals)


def differences(expected: str, actual: str) -> list[str]:
    """Where ``actual`` (what ran) differs from ``expected`` (the README's text).

    The texts are split into numbers and the words between them. Words must
    be equal (runs of whitespace count as one space, so that a table's
    columns may shift); each number must be within :func:`_tolerance` of
    the README's, a bound above last-digit noise (a gap printed with 4-6
    decimals: 1e-3; a percentage with one decimal: 0.2; 1266 rows: 6).
    """
    words_e, words_a = _NUMBER.split(expected), _NUMBER.split(actual)
    nums_e, nums_a = _NUMBER.findall(expected), _NUMBER.findall(actual)

    def norm(word):
        return re.sub(r"\s+", " ", word)

    if [norm(w) for w in words_e] != [norm(w) for w in words_a]:
        return [f"the words differ:\n--- README\n{expected}\n--- printed\n{actual}"]
    out = []
    for e, a in zip(nums_e, nums_a, strict=True):
        if not math.isclose(float(e), float(a), rel_tol=0, abs_tol=_tolerance(e)):
            out.append(f"{e} in the README, {a} printed (tolerance {_tolerance(e):g})")
    return out


def update(text: str, blocks: list[Block], new: dict[int, str]) -> str:
    """``text`` with each printed block replaced by ``new[block.start]``."""
    lines = text.splitlines()
    for b in sorted(blocks, key=lambda b: -b.start):
        if b.start in new:
            lines[b.start : b.stop] = new[b.start].splitlines()
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- the tests
# Run after the quickstart, in its process: one cell of the search recomputed
# by hand, the candidate that prunes nothing on the first of the 3 folds
# GridSearchCV made (stratified, in order). The filter seeds its fit from
# random_state, so a clone fitted on the same rows is the same model; the
# gap is fairlearn's.
QUICKSTART_CHECK = """
import numpy as np
from fairlearn.metrics import demographic_parity_difference as fl_dp
from sklearn.base import clone
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold

i = int(np.flatnonzero(results["param_influencefilter__prune_ratio"] == 0.0)[0])
train, test = next(StratifiedKFold(3).split(X, y))
pipe = clone(search.estimator).set_params(**results["params"][i])
pipe.fit(X.iloc[train], y.iloc[train], sensitive_features=sex.iloc[train])
pred = pipe.predict(X.iloc[test])
gap = fl_dp(y.iloc[test], pred, sensitive_features=sex.iloc[test])
assert abs(results["split0_test_dp_gap"][i] + gap) <= 1e-12, (results["split0_test_dp_gap"][i], gap)
acc = accuracy_score(y.iloc[test], pred)
assert abs(results["split0_test_accuracy"][i] - acc) <= 1e-12, (results["split0_test_accuracy"][i], acc)
# a gap of exactly 0 on every fold would make the check above vacuous
assert (results[[f"split{k}_test_dp_gap" for k in range(3)]] < 0).any(axis=None)
print("quickstart cell checked against fairlearn")
"""
QUICKSTART = "Quickstart: clean inside a Pipeline, search the pruning ratio"

try:
    import pytest
except ImportError:  # the script's --update needs no pytest
    pytest = None

if pytest is not None:
    BLOCKS = parse(README.read_text())

    @pytest.fixture(scope="module")
    def runs():
        return run_all(BLOCKS, epilogues={QUICKSTART: QUICKSTART_CHECK})

    def test_the_readme_marks_its_code_and_printed_blocks():
        secs = sections(BLOCKS)
        assert QUICKSTART in secs
        assert "Scores for a fitted model: `compute_influence`" in secs
        assert any(s.startswith("Beyond one machine: Dask") for s in secs)
        sources = [b.source for b in BLOCKS if b.source is not None]
        assert sources.count("examples/plot_fairness_adult.py") == 1
        assert sources.count("above") >= 3
        # every printed block sits in a section that runs code, or names a script
        for b in BLOCKS:
            if b.source == "above":
                assert b.section in secs, b.section

    @pytest.mark.parametrize("name", list(sections(BLOCKS)))
    def test_section_runs_as_written(runs, name):
        rc, stdout, stderr = runs["section", name]
        assert rc == 0, stderr[-4000:]
        n = len(sections(BLOCKS)[name])
        assert len(stdout) == n + 1, "each block ran to its end"
        if name == QUICKSTART:
            assert stdout[-1].strip() == "quickstart cell checked against fairlearn"

    @pytest.mark.parametrize(
        "block", [b for b in BLOCKS if b.source], ids=lambda b: f"line{b.start}"
    )
    def test_printed_block_is_what_runs_print(runs, block):
        for key, (rc, _, stderr) in runs.items():
            if key in (("script", block.source), ("section", block.section)):
                assert rc == 0, stderr[-4000:]
        actual = printed(BLOCKS, runs)[block.start]
        assert differences(block.text, actual) == [], (
            f"README.md line {block.start + 1}: regenerate with "
            "`python tests/test_readme.py --update`"
        )

    def test_differences_allow_last_digits_only():
        table = (
            "   ratio  accuracy\n0   0.05  0.828000  -0.162150\ngap -32.7%, 1266 rows"
        )
        same = (
            "   ratio  accuracy\n0   0.05   0.828400  -0.161300\ngap -32.6%, 1266 rows"
        )
        assert differences(table, same) == []
        assert len(differences(table, same.replace("0.828400", "0.830000"))) == 1
        assert len(differences(table, same.replace("-32.6%", "-33.0%"))) == 1
        assert differences(table, same.replace("1266", "1270")) == []
        assert len(differences(table, same.replace("1266", "1273"))) == 1
        assert len(differences("1 thread, 199", "2 thread, 199")) == 1
        assert len(differences("1 thread, 199", "1 thread, 198")) == 1
        assert len(differences(table, same.replace("rows", "cols"))) == 1
        assert len(differences(table, same + "\nmore")) == 1

    def test_update_replaces_only_the_printed_blocks():
        text = (
            "## A\n\n```python\nprint(1)\n```\n\n<!-- printed by the python block "
            "above -->\n```text\nold\n```\n\n```text\nkeep\n```\n"
        )
        blocks = parse(text)
        assert [b.source for b in blocks] == [None, "above", None]
        new = update(text, blocks, {blocks[1].start: "new\nlines"})
        assert new == text.replace("```text\nold\n", "```text\nnew\nlines\n")


def main(argv: list[str]) -> int:
    text = README.read_text()
    blocks = parse(text)
    runs = run_all(blocks)
    failed = [k for k, (rc, _, _) in runs.items() if rc != 0]
    for key in failed:
        print(f"{key[0]} {key[1]!r} failed:\n{runs[key][2][-4000:]}", file=sys.stderr)
    if failed:
        return 1
    new = printed(blocks, runs)
    changed = [b for b in blocks if b.start in new and b.text != new[b.start]]
    if "--update" in argv:
        README.write_text(update(text, blocks, new))
        for b in changed:
            print(f"README.md line {b.start + 1}: printed block rewritten")
        print(f"{len(changed)} of {len(new)} printed blocks rewritten")
        return 0
    bad = 0
    for b in blocks:
        if b.start in new:
            diff = differences(b.text, new[b.start])
            bad += bool(diff)
            for d in diff:
                print(f"README.md line {b.start + 1}: {d}")
    print(f"{len(new) - bad} of {len(new)} printed blocks match")
    return int(bad > 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
