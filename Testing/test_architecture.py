"""The engine's shape: layers that import only downward, no import circles, no private names borrowed.

Read from the source with ``ast`` (every import, also those inside functions), so a new module that breaks the
shape fails here with the arrow that does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "medai"

#: Lowest first; a module may import its own layer and those below it. Names are module prefixes.
LAYERS = (
    ("medai", "medai.errors", "medai.volume", "medai.labels", "medai.progress", "medai.home", "medai.metrics",
     "medai.sitk_image"),
    ("medai.resample",),
    ("medai.io",),
    ("medai.features",),
    ("medai.models",),
    ("medai.runtime",),
    ("medai.pipeline",),
    ("medai.export", "medai.evaluation", "medai.training"),
    ("medai.cli", "medai.runner", "medai.slicer"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ENGINE.rglob("*.py")}


def imports_of(name: str) -> list[tuple[str, str]]:
    """(imported module, imported name or '') for every ``medai`` import in module ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                stem = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(stem + ([node.module] if node.module else []))
            if base.split(".")[0] != "medai":
                continue
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    found.append((f"{base}.{alias.name}", ""))
                else:
                    found.append((base, alias.name))
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.split(".")[0] == "medai"]
    return found


def layer_of(name: str) -> int:
    matches = [(len(prefix), rank) for rank, layer in enumerate(LAYERS) for prefix in layer
               if name == prefix or name.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{name} is in no layer of LAYERS: place it")
    return max(matches)[1]


def edges() -> dict[str, set[str]]:
    return {name: {target for target, _ in imports_of(name) if target in MODULES and target != name}
            for name in MODULES}


def test_every_import_points_to_its_own_layer_or_below():
    upward = [f"{a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})"
              for a, targets in edges().items() for b in targets if layer_of(b) > layer_of(a)]
    assert upward == []


def test_there_are_no_import_circles():
    graph = edges()
    circles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = "closed"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_no_private_name_is_borrowed_from_another_module():
    borrowed = [f"{name} uses {target}.{what}" for name in MODULES for target, what in imports_of(name)
                if what.startswith("_") and not what.startswith("__") and target != name]
    assert borrowed == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_engine_imports_neither_slicer_nor_qt_and_the_bridge_no_qt(name):
    tree = ast.parse(MODULES[name].read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    forbidden = {"qt", "ctk", "PythonQt"} | (set() if name.startswith("medai.slicer") else {"slicer", "vtk"})
    assert imported & forbidden == set()
