"""Helpers of the documentation build (imported by conf.py).

- :func:`markdown_to_rst`: the benchmark result tables are written as
  Markdown (``benchmarks/results/*.md``); this converts the subset they use
  (headings, paragraphs, lists, pipe tables, code fences, inline code, bold,
  italics, links) to reStructuredText, escaping everything else, so the
  documentation needs no Markdown parser.
- the ``bench`` role: a measured number quoted from a benchmark result,
  checked against that file (see :func:`quoted_number_found`).
- :class:`ExampleOrder`: the order of the gallery.
- :func:`reset_state`: run by sphinx-gallery before each example.
"""

from __future__ import annotations

import re
from pathlib import Path

# ----------------------------------------------------------------- Markdown
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)\d+[.)]\s+(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)\s*$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
# inline tokens, tried in this order at each position
_INLINE = re.compile(
    r"(?P<code>`+)(?P<code_text>.+?)(?P=code)"
    r"|\[(?P<link_text>[^\]]+)\]\((?P<url>[^)\s]+)\)"
    r"|\*\*(?P<bold>[^*]+?)\*\*"
    r"|(?<![\w*])\*(?P<em>[^*\s][^*]*?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<em2>[^_\s][^_]*?)_(?![\w_])"
)
_ESCAPE = re.compile(r"([\\`*_|])")
UNDERLINES = "=-~^\"'"


def _escape(text: str) -> str:
    return _ESCAPE.sub(r"\\\1", text)


def _wrap(markup: str, before: str, after: str) -> str:
    """Inline markup with escaped spaces where it touches a word character."""
    left = "\\ " if before and (before[-1].isalnum() or before[-1] in "_") else ""
    right = "\\ " if after and (after[0].isalnum() or after[0] in "_") else ""
    return f"{left}{markup}{right}"


def inline(text: str) -> str:
    """Markdown inline markup to reStructuredText (everything else escaped)."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(_escape(text[pos : m.start()]))
        before, after = text[: m.start()], text[m.end() :]
        if m.group("code"):
            body = m.group("code_text").strip()
            markup = f"``{body}``" if "``" not in body else _escape(body)
        elif m.group("link_text") is not None:
            label = _escape(m.group("link_text"))
            markup = f"`{label} <{m.group('url')}>`__"
        elif m.group("bold") is not None:
            markup = f"**{_escape(m.group('bold').strip())}**"
        else:
            body = m.group("em") if m.group("em") is not None else m.group("em2")
            markup = f"*{_escape(body.strip())}*"
        out.append(_wrap(markup, before, after))
        pos = m.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)]


def _table(rows: list[str]) -> list[str]:
    has_header = len(rows) > 1 and _TABLE_SEP.match(rows[1])
    body = [_cells(r) for r in rows if not _TABLE_SEP.match(r)]
    width = max(len(r) for r in body)
    out = [".. list-table::"]
    if has_header:
        out.append("   :header-rows: 1")
    out.append("")
    for row in body:
        row = row + [""] * (width - len(row))
        for j, cell in enumerate(row):
            lead = "   * - " if j == 0 else "     - "
            text = inline(cell)
            out.append((lead + text).rstrip() if text else lead.rstrip())
    out.append("")
    return out


def markdown_to_rst(markdown: str, *, level: int = 0) -> str:
    """Convert Markdown to reStructuredText.

    ``level`` shifts the headings: the shallowest heading of the text gets
    the underline character ``UNDERLINES[level]``, the next depth used the
    next one, and so on. Depths the text skips (``##`` then ``####``) are
    closed up, since reStructuredText cannot skip a level and several texts
    end up on one page.
    """
    lines = markdown.splitlines()
    in_fence, depths = False, set()
    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and _HEADING.match(line):
            depths.add(len(_HEADING.match(line).group(1)))
    rank = {d: k for k, d in enumerate(sorted(depths))}
    out: list[str] = []
    i = 0

    def blank():
        if out and out[-1] != "":
            out.append("")

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            blank()
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            blank()
            out += [f".. code-block:: {fence.group(2) or 'text'}", ""]
            i += 1
            while i < len(lines) and not _FENCE.match(lines[i]):
                out.append(("   " + lines[i]).rstrip())
                i += 1
            i += 1
            out.append("")
            continue
        heading = _HEADING.match(line)
        if heading:
            depth = min(level + rank[len(heading.group(1))], len(UNDERLINES) - 1)
            title = inline(heading.group(2))
            blank()
            out += [title, UNDERLINES[depth] * max(len(title), 3), ""]
            i += 1
            continue
        if line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i])
                i += 1
            blank()
            out += _table(rows)
            continue
        if _RULE.match(line):
            i += 1
            continue
        if line.lstrip().startswith(">"):
            quote = []
            while i < len(lines) and lines[i].lstrip().startswith(">"):
                quote.append(lines[i].lstrip()[1:])
                i += 1
            blank()
            inner = markdown_to_rst("\n".join(quote), level=level).rstrip("\n")
            out += [("   " + q).rstrip() for q in inner.splitlines()] + [""]
            continue
        item = _BULLET.match(line) or _NUMBERED.match(line)
        if item:
            marker = "- " if _BULLET.match(line) else "#. "
            blank()
            while i < len(lines):
                m = _BULLET.match(lines[i]) or _NUMBERED.match(lines[i])
                if m is None:
                    break
                text = [m.group(2).strip()]
                i += 1
                # continuation lines: indented or lazy, up to a blank line
                while (
                    i < len(lines)
                    and lines[i].strip()
                    and not _BULLET.match(lines[i])
                    and not _NUMBERED.match(lines[i])
                    and not lines[i].lstrip().startswith("|")
                    and not _HEADING.match(lines[i])
                ):
                    text.append(lines[i].strip())
                    i += 1
                out.append(marker + inline(" ".join(text)))
                if i < len(lines) and not lines[i].strip():
                    nxt = i + 1
                    while nxt < len(lines) and not lines[nxt].strip():
                        nxt += 1
                    if nxt < len(lines) and (
                        _BULLET.match(lines[nxt]) or _NUMBERED.match(lines[nxt])
                    ):
                        i = nxt
            out.append("")
            continue
        # a paragraph: up to a blank line or another block
        para = []
        while (
            i < len(lines)
            and lines[i].strip()
            and not _HEADING.match(lines[i])
            and not _FENCE.match(lines[i])
            and not lines[i].lstrip().startswith("|")
            and not _BULLET.match(lines[i])
            and not _NUMBERED.match(lines[i])
            and not lines[i].lstrip().startswith(">")
        ):
            para.append(lines[i].strip())
            i += 1
        blank()
        text = inline(" ".join(para))
        out += [text, ""]
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def benchmark_results(results_dir: Path, order=()) -> tuple[str, list[Path]]:
    """The ``*.md`` of ``results_dir`` as reStructuredText, ``order`` first.

    Smoke-test results (``*_quick.md``) are left out.
    """
    files = [p for p in Path(results_dir).glob("*.md") if not p.stem.endswith("_quick")]
    rank = {name: k for k, name in enumerate(order)}
    files.sort(key=lambda p: (rank.get(p.stem, len(rank)), p.stem))
    parts = []
    for path in files:
        rst = markdown_to_rst(path.read_text(encoding="utf-8"), level=1)
        source = f"``benchmarks/results/{path.name}``"
        parts.append(f".. _benchmark-{path.stem}:\n\n{rst}\n*Source:* {source}\n")
    return "\n".join(parts), files


# ------------------------------------------------------------- quoted numbers
_BENCH_ROLE = re.compile(r"^(?P<text>.+?)\s*<(?P<stem>[\w-]+)>$", re.S)


def quoted_number_found(text: str, markdown: str) -> bool:
    """Whether ``text`` (a number as quoted, e.g. "-57%" or "0.082") is in ``markdown``.

    Matched whole and with its sign: "0.08" is not found in "0.082", nor
    "2%" in "12%", nor "0.5" in "-0.5" ("+0.5" holds "0.5").
    """
    body = r"\s+".join(re.escape(part) for part in text.split())  # any line breaks
    pattern = r"(?<![\w.-])" + body + r"(?![\w%]|\.\d)"
    return re.search(pattern, markdown) is not None


def bench_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``:bench:`-57% <fairness>```: a number quoted from a benchmark's results.

    Renders the number as a link to the results of that benchmark on the
    benchmarks page (``benchmark-<stem>``) and checks that the number is in
    ``benchmarks/results/<stem>.md``; if it is not (the benchmark was rerun
    and its numbers moved), the build warns, so that no page quotes a number
    the results no longer hold.
    """
    from docutils import nodes
    from sphinx import addnodes

    m = _BENCH_ROLE.match(text)
    if m is None:
        msg = inliner.reporter.error(
            f"bench role: write :bench:`<number> <results stem>`, got {text!r}",
            line=lineno,
        )
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    number, stem = m.group("text"), m.group("stem")
    env = inliner.document.settings.env
    path = Path(env.srcdir).parent / "benchmarks" / "results" / f"{stem}.md"
    messages = []
    if not path.is_file():
        messages.append(inliner.reporter.warning(f"bench role: no {path}", line=lineno))
    else:
        env.note_dependency(str(path))
        if not quoted_number_found(number, path.read_text(encoding="utf-8")):
            messages.append(
                inliner.reporter.warning(
                    f"bench role: {number!r} is not in benchmarks/results/{stem}.md "
                    "(rerun benchmark? update the page that quotes it)",
                    line=lineno,
                )
            )
    ref = addnodes.pending_xref(
        rawtext,
        refdomain="std",
        reftype="ref",
        reftarget=f"benchmark-{stem}",
        refexplicit=True,
        refwarn=True,
    )
    ref["refdoc"] = env.docname
    ref += nodes.inline(number, number)
    return [ref], messages


# ------------------------------------------------------------------ gallery
EXAMPLE_ORDER = [
    "plot_fairness_adult.py",
    "plot_prune_ratio_search.py",
    "plot_noisy_labels.py",
    "plot_robustness.py",
    "plot_custom_method.py",
]


class ExampleOrder:
    """sphinx-gallery sort key: the examples in ``EXAMPLE_ORDER``, then the rest."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        rank = (
            EXAMPLE_ORDER.index(name) if name in EXAMPLE_ORDER else len(EXAMPLE_ORDER)
        )
        return (rank, name)

    def __repr__(self):
        return "ExampleOrder"


def reset_state(gallery_conf, fname):
    """Before each example: scikit-learn's global config back to its defaults."""
    import sklearn

    sklearn.set_config(enable_metadata_routing=False)


# ---------------------------------------------------------------- directive
def setup(app):
    """Sphinx extension: the ``benchmark-results`` directive and the ``bench`` role."""
    from docutils.parsers.rst import Directive, directives

    class BenchmarkResults(Directive):
        """Insert ``benchmarks/results/*.md`` (path relative to the page), converted.

        Options: ``:order:`` the stems to put first, separated by spaces.
        """

        required_arguments = 1
        option_spec = {"order": directives.unchanged}

        def run(self):
            env = self.state.document.settings.env
            rel, path = env.relfn2path(self.arguments[0])
            order = self.options.get("order", "").split()
            rst, files = benchmark_results(Path(path), order=order)
            if not files:
                raise self.error(f"No Markdown results in {path}.")
            for f in files:
                env.note_dependency(str(f))
            source = str(Path(path) / "results.md")
            self.state_machine.insert_input(rst.splitlines(), source)
            return []

    app.add_directive("benchmark-results", BenchmarkResults)
    app.add_role("bench", bench_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
