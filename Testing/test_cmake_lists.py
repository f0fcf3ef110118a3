"""The Slicer extension's CMakeLists.txt files list exactly what is on disk, and the top one is a Slicer extension.

A file missing from a module's list is not installed (the module breaks in an installed Slicer); a listed file
missing on disk stops the extension's configure step. Neither shows up until the extension is built, so they
are checked here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = ROOT / "CMakeLists.txt"
EXTENSION_FIELDS = ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS")


# --- a small CMake reader: commands and their arguments, ${VAR} expanded from set() -----------------------
def commands(path: Path) -> list[tuple[str, list[str]]]:
    """``(name, arguments)`` of each command in a CMake file, in order.

    Quoted arguments lose their quotes; an unquoted ``${LIST}`` becomes one argument per item, as in CMake.
    """
    text = re.sub(r'#[^\n"]*(?=\n|$)', "", path.read_text())  # comments (none of ours holds a quote)
    found, variables = [], {}
    for match in re.finditer(r"(\w+)\s*\(((?:[^()\"]|\"[^\"]*\")*)\)", text):
        name = match.group(1).lower()
        args = []
        for token in re.findall(r'"[^"]*"|[^\s"]+', match.group(2)):
            if token.startswith('"'):
                args.append(expand(token[1:-1], variables))
            else:
                args += expand(token, variables).split()
        if name == "set" and args:
            variables[args[0]] = args[1:]
        found.append((name, args))
    return found


def expand(arg: str, variables: dict[str, list[str]]) -> str:
    """``${VAR}`` replaced by what set() gave it (variables CMake itself defines stay as they are)."""
    return re.sub(r"\$\{(\w+)\}", lambda m: " ".join(variables.get(m.group(1), [m.group(0)])), arg)


def the(cmds: list[tuple[str, list[str]]], name: str) -> list[list[str]]:
    return [args for n, args in cmds if n == name]


def keyword_values(args: list[str], keyword: str, keywords: tuple[str, ...]) -> list[str]:
    """The arguments after ``keyword`` up to the next keyword of ``keywords``."""
    start = args.index(keyword) + 1
    end = next((i for i in range(start, len(args)) if args[i] in keywords), len(args))
    return args[start:end]


def files_under(folder: Path) -> set[str]:
    """Every file below ``folder`` (relative, POSIX), leaving out Python's caches."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def module_folders() -> list[str]:
    return [args[0] for args in the(commands(TOP), "add_subdirectory")]


# --- modules -------------------------------------------------------------------------------------------------
def test_every_folder_with_a_cmakelists_is_added_and_every_added_folder_exists():
    on_disk = sorted(p.parent.name for p in ROOT.glob("*/CMakeLists.txt"))
    assert sorted(module_folders()) == on_disk
    assert {"MedAISeg", "MedAIClassify"} <= set(on_disk)


@pytest.mark.parametrize("module", module_folders())
def test_module_lists_exactly_its_python_files_and_resources(module):
    folder = ROOT / module
    cmds = commands(folder / "CMakeLists.txt")
    variables = {args[0]: args[1:] for args in the(cmds, "set")}
    assert variables["MODULE_NAME"] == [module]
    scripts, resources = set(variables["MODULE_PYTHON_SCRIPTS"]), set(variables["MODULE_PYTHON_RESOURCES"])

    on_disk = files_under(folder) - {"CMakeLists.txt"}
    python_files = {f for f in on_disk if f.endswith(".py")}
    assert scripts == python_files, f"missing: {python_files - scripts}, not on disk: {scripts - python_files}"
    assert resources == on_disk - python_files, (f"missing: {on_disk - python_files - resources}, "
                                                 f"not on disk: {resources - on_disk}")
    assert {f"{module}.py", f"Resources/UI/{module}.ui", f"Resources/Icons/{module}.png"} <= on_disk

    (build,) = the(cmds, "slicermacrobuildscriptedmodule")
    keys = ("NAME", "SCRIPTS", "RESOURCES", "WITH_GENERIC_TESTS")
    assert keyword_values(build, "NAME", keys) == [module]
    assert set(keyword_values(build, "SCRIPTS", keys)) == scripts
    assert set(keyword_values(build, "RESOURCES", keys)) == resources


# --- the extension -------------------------------------------------------------------------------------------
def test_top_level_is_a_slicer_extension_in_the_template_order():
    cmds = commands(TOP)
    names = [name for name, _ in cmds]
    assert names[0] == "cmake_minimum_required"
    assert the(cmds, "project") == [["MedAI"]]
    variables = {args[0]: " ".join(args[1:]) for args in the(cmds, "set")}
    for field in EXTENSION_FIELDS:
        assert variables.get(f"EXTENSION_{field}", "").strip(), f"EXTENSION_{field} is not set"
    assert variables["EXTENSION_CATEGORY"] == "Segmentation"
    assert "PyTorch" in variables["EXTENSION_DEPENDS"].split()
    for url in (variables["EXTENSION_ICONURL"], *variables["EXTENSION_SCREENSHOTURLS"].split()):
        in_repo = url.split("/main/", 1)[1]
        assert (ROOT / in_repo).is_file(), f"{url} names {in_repo}, which is not in the repository"

    assert ["Slicer", "REQUIRED"] in the(cmds, "find_package")
    includes = [args[0] for args in the(cmds, "include")]
    assert includes == ["${Slicer_USE_FILE}", "${Slicer_EXTENSION_GENERATE_CONFIG}", "${Slicer_EXTENSION_CPACK}"]
    assert names.index("find_package") < names.index("add_subdirectory")
    assert names[-2:] == ["include", "include"]  # generate config and CPack come last


def engine_rule() -> tuple[dict[str, list[str]], list[str]]:
    """The file(GLOB_RECURSE ...) results by variable, and the arguments of the engine's install rule."""
    cmds = commands(TOP)
    globs = {}
    for args in the(cmds, "file"):
        assert args[:4] == ["GLOB_RECURSE", args[1], "RELATIVE", "${CMAKE_CURRENT_SOURCE_DIR}"], args
        globs[args[1]] = [a for a in args[4:] if a != "CONFIGURE_DEPENDS"]
    (rule,) = the(cmds, "ctkmacrocompilepythonscript")
    return globs, rule


def glob_recurse(pattern: str) -> set[str]:
    """What CMake's ``file(GLOB_RECURSE ... RELATIVE <root> <folder>/<name pattern>)`` gives, for plain folders."""
    folder, name = pattern.rsplit("/", 1)
    assert not any(c in folder for c in "*?["), "a wildcard folder: this reader does not emulate it"
    return {f"{folder}/{f}" for f in files_under(ROOT / folder) if fnmatch(f.rsplit("/", 1)[-1], name)}


def package_files() -> tuple[set[str], set[str]]:
    """The engine's Python files and its package data (as pyproject.toml declares it), relative to the root."""
    python = {f"medai/{f}" for f in files_under(ROOT / "medai") if f.endswith(".py")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["medai"]
    data = {f"medai/{f}" for f in files_under(ROOT / "medai") if any(fnmatch(f, p) for p in patterns)}
    return python, data


def test_the_whole_engine_package_is_installed_next_to_the_modules():
    globs, rule = engine_rule()
    keys = ("TARGET_NAME", "SCRIPTS", "RESOURCES", "SOURCE_DIR", "DESTINATION_DIR", "INSTALL_DIR",
            "NO_INSTALL_SUBDIR", "GLOBAL_TARGET")
    (scripts_var,) = keyword_values(rule, "SCRIPTS", keys)
    (resources_var,) = keyword_values(rule, "RESOURCES", keys)
    assert keyword_values(rule, "DESTINATION_DIR", keys) == ["${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR}"]
    assert keyword_values(rule, "INSTALL_DIR", keys) == ["${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}"]
    assert "NO_INSTALL_SUBDIR" in rule  # medai/ lands beside MedAISeg.py: `import medai` works in Slicer

    scripts = set().union(*(glob_recurse(p) for p in globs[scripts_var.strip("${}")]))
    resources = set().union(*(glob_recurse(p) for p in globs[resources_var.strip("${}")]))
    python, data = package_files()
    assert "medai/runner.py" in python and "medai/__init__.py" in python
    assert scripts == python
    assert data <= resources, f"package data not installed: {data - resources}"


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_itself_globs_what_the_emulation_expects(tmp_path):
    globs, _ = engine_rule()
    script = tmp_path / "globs.cmake"
    script.write_text("".join(
        f'file(GLOB_RECURSE {var} RELATIVE ${{CMAKE_CURRENT_SOURCE_DIR}} {" ".join(patterns)})\n'
        f'message("{var}=${{{var}}}")\n' for var, patterns in globs.items()))
    done = subprocess.run(["cmake", "-P", str(script)], cwd=ROOT, capture_output=True, text=True, check=True)
    for line in done.stderr.splitlines():  # message() writes to stderr
        var, files = line.split("=", 1)
        assert set(files.split(";")) == set().union(*(glob_recurse(p) for p in globs[var])), var
