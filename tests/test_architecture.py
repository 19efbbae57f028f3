"""The layers of docs/architecture.md, enforced on the source: an AST walk over every module
finds every import, at module level or inside a function; nothing is imported to do it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "progs_codec"
TRAINER = ROOT / "training" / "progs_training"
INDEPENDENT = ROOT / "conformance" / "independent_decoder"


@dataclass(frozen=True)
class Import:
    """One imported module (absolute name); ``names`` are the names taken from it."""

    module: str
    names: tuple[str, ...]
    line: int
    top_level: bool          # executed on import of the importing module


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, top_level: bool):
    """``(import node, top_level)`` pairs, skipping ``if TYPE_CHECKING:`` blocks (annotations
    only, never executed)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _walk(other, top_level)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, top_level
        inner = top_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                     ast.Lambda))
        yield from _walk(child, inner)


def imports_of(path: Path, module: str, known: set[str]) -> list[Import]:
    """Every import in ``path`` (module ``module``), resolved to absolute module names.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module in
    ``known``, else of ``pkg``.
    """
    is_package = path.name == "__init__.py"
    out = []
    for node, top in _walk(ast.parse(path.read_text(), str(path)), True):
        if isinstance(node, ast.Import):
            out += [Import(a.name, (), node.lineno, top) for a in node.names]
            continue
        if node.level:
            base = module.split(".")
            base = base if is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            if sub in known:
                out.append(Import(sub, (), node.lineno, top))
            else:
                out.append(Import(target, (alias.name,), node.lineno, top))
    return out


def package_graph() -> dict[str, list[Import]]:
    """Module name -> its imports, for every module of ``progs_codec``."""
    paths = {_module_name(p, PACKAGE, "progs_codec"): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    return {name: imports_of(path, name, known) for name, path in paths.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a self-import (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_imports_inside_functions():
    graph = package_graph()
    inner = [i for i in graph["progs_codec.tools.cli"] if not i.top_level]
    assert any(i.module == "progs_codec.tools.inspect" for i in inner)
    assert not _cycles({"a": {"b"}, "b": {"c"}, "c": set()})
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_in_the_package():
    graph = package_graph()
    edges = {m: {i.module for i in imports if i.module in graph} for m, imports in graph.items()}
    assert _cycles(edges) == []
