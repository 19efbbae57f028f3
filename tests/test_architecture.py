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


# -- the trainer's door ------------------------------------------------------------------------


def _public_names(module: str) -> set[str]:
    """``__all__`` of a progs_codec module, read from its source."""
    parts = module.split(".")[1:]
    path = PACKAGE.joinpath(*parts)
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                                for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError(f"{module} has no __all__")


def trainer_violations(folder: Path) -> list[str]:
    """Imports of progs_codec in ``folder`` that go past the door: a module outside
    ``TRAINER_MODULES``, or a name not in that module's ``__all__`` (``_`` names never are)."""
    trainer_modules = ast.literal_eval(next(
        node.value for node in ast.parse((PACKAGE / "build.py").read_text()).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") ==
        "TRAINER_MODULES"))
    known = {_module_name(p, PACKAGE, "progs_codec") for p in PACKAGE.rglob("*.py")}
    out = []
    for path in sorted(folder.rglob("*.py")):
        module = _module_name(path, folder, folder.name)
        for imp in imports_of(path, module, known):
            if imp.module.split(".")[0] != "progs_codec":
                continue
            where = f"{path.relative_to(folder.parent)}:{imp.line}"
            if imp.module not in trainer_modules:
                out.append(f"{where} imports {imp.module}")
                continue
            public = _public_names(imp.module)
            out += [f"{where} imports {imp.module}.{name}" for name in imp.names
                    if name.startswith("_") or name not in public]
    return out


def test_trainer_uses_only_the_door():
    assert trainer_violations(TRAINER) == []


def test_door_check_catches_private_and_internal_imports(tmp_path):
    folder = tmp_path / "trainer"
    folder.mkdir()
    (folder / "a.py").write_text(
        "from progs_codec.build import build_model, _base_step_units\n"
        "def f():\n    from progs_codec.entropy.model import EntropyModel\n"
        "import progs_codec.format.structure\n"
        "from progs_codec import encode\n")
    assert trainer_violations(folder) == [
        "trainer/a.py:1 imports progs_codec.build._base_step_units",
        "trainer/a.py:3 imports progs_codec.entropy.model",
        "trainer/a.py:4 imports progs_codec.format.structure",
    ]


# -- the layers (docs/architecture.md) ---------------------------------------------------------

#: Layer of a module, by name; the first matching prefix wins.
LAYERS = [
    ("progs_codec.errors", "base"), ("progs_codec.model", "base"),
    ("progs_codec.files", "base"), ("progs_codec.version", "base"),
    ("progs_codec.entropy", "entropy"), ("progs_codec.format", "format"),
    ("progs_codec.codec", "codec"), ("progs_codec.build", "build"),
    ("progs_codec.testing", "testing"), ("progs_codec.render", "render"),
    ("progs_codec.tools", "tools"), ("progs_codec.__main__", "api"), ("progs_codec", "api"),
]

#: Which layers each layer may import (besides itself).
MAY_IMPORT = {
    "base": {"base"},
    "entropy": {"base"},
    "format": {"base", "entropy"},
    "codec": {"base", "entropy", "format"},
    "build": {"base", "entropy", "format"},
    "testing": {"base", "entropy", "format"},
    "render": {"base"},
    "tools": {"base", "entropy", "format", "codec", "render"},
    "api": {"base", "entropy", "format", "codec", "build", "testing", "render", "tools"},
}

#: Third-party modules and the layers that may import them; ``inside`` ones only inside
#: functions (optional dependencies: a plain install lacks them).
THIRD_PARTY = {
    "numpy": ({"base", "entropy", "format", "codec", "build", "testing", "render", "tools"},
              False),
    "constriction": ({"entropy", "format"}, False),
    "bitarray": ({"entropy"}, False),
    "torch": ({"render"}, True),
    "gsplat": ({"render"}, True),
    "plyfile": ({"render"}, True),
    "gsply": ({"render"}, True),
    "PIL": ({"render"}, True),
    "matplotlib": ({"tools"}, True),
}


def layer_of(module: str) -> str:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def layer_violations(graph: dict[str, list[Import]]) -> list[str]:
    import sys

    out = []
    for module, imports in sorted(graph.items()):
        layer = layer_of(module)
        for imp in imports:
            top = imp.module.split(".")[0]
            where = f"{module}:{imp.line} imports {imp.module}"
            if top == "progs_codec":
                target = layer_of(imp.module)
                if target != layer and target not in MAY_IMPORT[layer]:
                    out.append(f"{where} ({layer} may not import {target})")
            elif top == "progs_training":
                out.append(f"{where} (the codec never imports the trainer)")
            elif top not in sys.stdlib_module_names and top != "__future__":
                if top not in THIRD_PARTY:
                    out.append(f"{where} (a dependency the layer table does not list)")
                    continue
                layers, inside = THIRD_PARTY[top]
                if layer not in layers:
                    out.append(f"{where} ({layer} may not import {top})")
                elif inside and imp.top_level:
                    out.append(f"{where} (optional dependency at module level)")
    return out


def test_every_module_has_a_layer():
    for module in package_graph():
        layer_of(module)


def test_layers_import_only_downwards():
    assert layer_violations(package_graph()) == []


def test_layer_check_catches_violations():
    graph = {
        "progs_codec.format.level": [Import("progs_codec.render.camera", (), 3, False)],
        "progs_codec.entropy.coder": [Import("torch", (), 4, False),
                                      Import("progs_training.train", (), 5, False)],
        "progs_codec.render.images": [Import("gsplat", (), 6, True)],
    }
    assert layer_violations(graph) == [
        "progs_codec.entropy.coder:4 imports torch (entropy may not import torch)",
        "progs_codec.entropy.coder:5 imports progs_training.train (the codec never imports "
        "the trainer)",
        "progs_codec.format.level:3 imports progs_codec.render.camera (format may not import "
        "render)",
        "progs_codec.render.images:6 imports gsplat (optional dependency at module level)",
    ]


def test_independent_decoder_imports_neither_the_codec_nor_constriction():
    paths = {_module_name(p, INDEPENDENT, "independent_decoder"): p
             for p in INDEPENDENT.rglob("*.py")}
    for module, path in paths.items():
        for imp in imports_of(path, module, set()):
            assert imp.module.split(".")[0] not in ("progs_codec", "constriction"), \
                f"{path.name}:{imp.line} imports {imp.module}"


def test_architecture_doc_lists_every_module():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(ROOT)) for p in sorted(PACKAGE.rglob("*.py"))
               if p.name != "__init__.py" or p.parent == PACKAGE
               if f"`{p.relative_to(ROOT)}`" not in doc]
    assert missing == [], "add to docs/architecture.md: " + ", ".join(missing)
