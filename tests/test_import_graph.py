"""The package's module-level imports form no cycle (issue 19).

The graph is read from the source (``ast``), not from a running import: an
edge ``a -> b`` for every import statement of module ``a`` outside a
function or class body (under ``if`` and ``try`` too) that names a module
``b`` of the package, or a name of one. Importing ``a.b.c`` also runs
``a.b``'s ``__init__``, so it adds an edge to each package on the way, except
the importer's own ancestors (already being imported when it runs).
"""

import ast
from pathlib import Path

import skinfluence

ROOT = Path(skinfluence.__file__).parent


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _top_level_imports(tree: ast.Module):
    """The import statements run when the module is imported."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If | ast.Try):
            todo += node.body + node.orelse
            todo += [n for h in getattr(node, "handlers", []) for n in h.body]
            todo += getattr(node, "finalbody", [])


def _targets(node, module: str, is_package: bool, modules) -> set[str]:
    """The package modules an import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    if node.level:
        parts = module.split(".")
        if not is_package:
            parts = parts[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return {
        f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
        for a in node.names
    }


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package modules its module-level imports run."""
    modules = _modules(root)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges = set()
        for node in _top_level_imports(tree):
            for target in _targets(node, module, path.name == "__init__.py", modules):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):  # the packages on the way
                    edges.add(".".join(parts[:i]))
        graph[module] = {
            t
            for t in edges
            if t in modules and t != module and not module.startswith(t + ".")
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its modules in order, the first repeated), or None."""
    state = dict.fromkeys(graph, 0)  # 0 new, 1 on the path, 2 done
    for start in sorted(graph):
        if state[start]:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state[nxt] == 1:
                return path[path.index(nxt) :] + [nxt]
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_find_cycle_finds_the_cycles_it_should():
    """The checker on graphs whose cycles are known by hand."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}) == ["b", "b2", "b"]


def test_import_graph_reads_relative_and_nested_imports(tmp_path):
    """Edges of a small package written here, against the ones known by hand."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text(
        "import numpy\nfrom .sub import b\n\ndef f():\n    from . import c\n"
    )
    (pkg / "c.py").write_text(
        "try:\n    from .sub.b import g\nexcept ImportError:\n    pass\n"
    )
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import c\nfrom ..a import f\n")
    assert import_graph(pkg) == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.sub", "pkg.sub.b"},  # not c: imported in a function
        "pkg.c": {"pkg.sub", "pkg.sub.b"},
        "pkg.sub": set(),
        "pkg.sub.b": {"pkg.c", "pkg.a"},  # not pkg: its ancestor
    }
    assert find_cycle(import_graph(pkg)) == ["pkg.a", "pkg.sub.b", "pkg.a"]


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "skinfluence.dask._client" in graph and len(graph) > 40
    assert find_cycle(graph) is None


def test_scoring_paths_share_a_leaf():
    """``_compute``, the Dask path and ``signals`` import the leaf ``_scoring``,
    and none of them at module level; the leaf imports none of them."""
    graph = import_graph()
    paths = {"skinfluence._compute", "skinfluence.dask", "skinfluence.signals"}

    def reach(module):
        seen, todo = set(), [module]
        while todo:
            for t in graph[todo.pop()] - seen:
                seen.add(t)
                todo.append(t)
        return seen

    leaf = reach("skinfluence._scoring")
    assert not any(m == p or m.startswith(p + ".") for m in leaf for p in paths)
    for p in paths:
        assert "skinfluence._scoring" in reach(p)


def test_no_scoring_path_calls_back_into_another():
    """Not even inside a function: the Dask path and the signals import no
    ``_compute``, and the leaf ``_scoring`` imports none of the three."""
    modules = _modules(ROOT)

    def named(module):  # every import statement of the module, anywhere
        path = modules[module]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = [
            n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
        ]
        return {
            t
            for n in nodes
            for t in _targets(n, module, path.name == "__init__.py", modules)
        }

    for module in modules:
        if module.startswith(("skinfluence.dask", "skinfluence.signals")):
            assert "skinfluence._compute" not in named(module), module
    leaf = named("skinfluence._scoring")
    for path in ("skinfluence._compute", "skinfluence.dask", "skinfluence.signals"):
        assert not any(t == path or t.startswith(path + ".") for t in leaf)
