"""The Slicer module files, checked without Slicer: what runs when Slicer loads them, naming, .ui and icons.

Slicer imports every module file at start-up: anything beyond definitions there slows or breaks every
session, and a heavy import (torch, monai, the engine) fails before the dependencies are installed.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p.parent.name for p in ROOT.glob("*/CMakeLists.txt")
                 if "slicerMacroBuildScriptedModule" in p.read_text())
PYTHON_FILES = sorted(p for module in MODULES for p in (ROOT / module).rglob("*.py"))
#: What a module file may import when Slicer loads it: the standard library, Slicer's own, the modules' Lib.
ALLOWED_IMPORTS = set(sys.stdlib_module_names) | {"slicer", "qt", "ctk", "vtk", "MedAISegLib"}
SLICER_BASES = {"": "ScriptedLoadableModule", "Widget": "ScriptedLoadableModuleWidget",
                "Logic": "ScriptedLoadableModuleLogic", "Test": "ScriptedLoadableModuleTest"}


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def is_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or (isinstance(node, ast.Tuple) and all(map(is_constant, node.elts)))


def classes(path: Path) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree(path).body if isinstance(node, ast.ClassDef)}


def ui_references(path: Path) -> set[str]:
    """The names used as ``self.ui.<name>`` in a file."""
    return {node.attr for node in ast.walk(tree(path))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui" and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"}


def imported_lib_files(path: Path) -> list[Path]:
    """The files of the modules' Lib packages that ``path`` imports (``from MedAISegLib.gui import ...``)."""
    names = [node.module for node in ast.walk(tree(path)) if isinstance(node, ast.ImportFrom) and node.module]
    return [f for name in names for f in ROOT.glob(f"*/{name.replace('.', '/')}.py")]


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_loading_a_module_file_only_defines_things(path):
    for node in tree(path).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            roots = [a.name.split(".")[0] for a in node.names] if isinstance(node, ast.Import) else [
                (node.module or "").split(".")[0]]
            assert set(roots) <= ALLOWED_IMPORTS, f"line {node.lineno}: imports {roots} when Slicer loads it"
        elif isinstance(node, ast.Expr):
            assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, str), f"line {node.lineno}"
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            assert node.value is not None and is_constant(node.value), f"line {node.lineno}: not a constant"
        else:
            assert isinstance(node, (ast.FunctionDef, ast.ClassDef)), f"line {node.lineno}: {type(node).__name__}"


@pytest.mark.parametrize("module", MODULES)
def test_module_has_the_slicer_classes_and_a_real_self_test(module):
    found = classes(ROOT / module / f"{module}.py")
    for suffix, base in SLICER_BASES.items():
        cls = found.get(module + suffix)
        assert cls is not None, f"no class {module + suffix}"
        assert base in {b.id for b in cls.bases if isinstance(b, ast.Name)}, f"{cls.name} is not a {base}"
    tests = [f for f in found[module + "Test"].body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")]
    assert tests
    for test in tests:  # each test checks something: no stub that only passes
        calls = {n.func.attr for n in ast.walk(test) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        assert any(c.startswith("assert") for c in calls), f"{test.name} asserts nothing"


@pytest.mark.parametrize("module", MODULES)
def test_ui_file_has_every_widget_the_code_uses_and_binds_real_parameters(module):
    source = ROOT / module / f"{module}.py"
    ui = ET.parse(ROOT / module / "Resources" / "UI" / f"{module}.ui").getroot()
    assert ui.findtext("class") == module
    widgets = {w.get("name") for w in ui.iter("widget")}
    used = ui_references(source).union(*(ui_references(f) for f in imported_lib_files(source)))
    assert used, "the module uses no widget of its .ui file"
    assert used <= widgets, f"not in the .ui file: {used - widgets}"

    bound = {w.get("name"): w.find("property[@name='SlicerParameterName']/string").text
             for w in ui.iter("widget") if w.find("property[@name='SlicerParameterName']") is not None}
    (wrapper,) = [c for c in classes(source).values()
                  if any(isinstance(d, ast.Name) and d.id == "parameterNodeWrapper" for d in c.decorator_list)]
    fields = {n.target.id for n in wrapper.body if isinstance(n, ast.AnnAssign)}
    assert bound and set(bound.values()) <= fields, f"bound to no parameter: {set(bound.values()) - fields}"


@pytest.mark.parametrize("icon", [*(f"{m}/Resources/Icons/{m}.png" for m in MODULES), "Resources/Icons/MedAI.png"])
def test_icons_are_128_pixel_pngs(icon):
    with Image.open(ROOT / icon) as image:
        assert image.format == "PNG" and image.size == (128, 128)
        assert len(image.convert("RGB").getcolors(1 << 24)) > 100, "a blank picture"


def test_screenshot_is_a_real_picture():
    with Image.open(ROOT / "Resources/Screenshots/MedAISeg.png") as image:
        assert image.format == "PNG" and image.width >= 800
        assert len(image.convert("RGB").getcolors(1 << 24)) > 1000


def test_requirements_are_the_engine_dependencies():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = pyproject["dependencies"] + pyproject["optional-dependencies"]["inference"]
    lines = (ROOT / "MedAISeg/Resources/requirements.txt").read_text().splitlines()
    listed = [line for line in (re.sub(r"#.*", "", line).strip() for line in lines) if line]
    assert sorted(listed) == sorted(expected)
