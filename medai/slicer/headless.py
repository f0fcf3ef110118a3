"""A MRML scene with Slicer's module logics, inside the Slicer application or without it (slicer-core).

Inside Slicer the application already owns the scene and the logics: :func:`init_headless` returns
``slicer.mrmlScene``. Outside it (``pip install slicer-core``) it builds what the application would:

* a scene and a ``vtkSlicerApplicationLogic``, kept referenced for the life of the process (module
  logics hold a raw pointer to it, and calls segfault once it is collected);
* the colors logic with the default color nodes; ``vtkMRMLColorLogic`` rather than Slicer's
  ``vtkSlicerColorLogic``, which wants the application's home folder and its color files;
* the volumes, segmentations and subject hierarchy logics, each given the application logic and the
  scene and registered under its module name (attaching the segmentations logic to the scene is what
  registers the labelmap/closed-surface converter rules);
* the terminologies logic, registered but not attached to the scene: slicer-core ships none of the
  ``.term.json`` dictionaries it would try (and fail, noisily) to load there. Its static methods
  (terminology entry (de)serialisation) need no dictionary;
* ``slicer.mrmlScene`` and ``slicer.modules.<name>.logic()``, which ``slicer.util`` functions such
  as ``updateSegmentBinaryLabelmapFromArray`` and ``arrayFromSegmentBinaryLabelmap`` call.

A second call returns the same scene.
"""

from __future__ import annotations

import types
from typing import Any

import slicer

#: Module logics by Slicer module name, and the application logic; kept for the process lifetime.
_LOGICS: dict[str, Any] = {}


def init_headless() -> "slicer.vtkMRMLScene":
    """The scene to put nodes in: Slicer's own in the application, else one built once per process."""
    if hasattr(slicer, "app") and getattr(slicer, "mrmlScene", None) is not None:
        return slicer.mrmlScene
    if not _LOGICS:
        _build()
    return _LOGICS["Application"].GetMRMLScene()


def _build() -> None:
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    _LOGICS["Application"] = app_logic

    colors = app_logic.GetColorLogic()
    colors.SetMRMLApplicationLogic(app_logic)
    colors.SetMRMLScene(scene)
    colors.AddDefaultColorNodes()
    app_logic.SetModuleLogic("Colors", colors)
    _LOGICS["Colors"] = colors

    for name, logic_class in (
        ("Volumes", slicer.vtkSlicerVolumesLogic),
        ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
        ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic),
    ):
        _register(name, logic_class(), app_logic, scene)
    _register("Terminologies", slicer.vtkSlicerTerminologiesModuleLogic(), app_logic, scene=None)

    slicer.mrmlScene = scene
    modules = getattr(slicer, "modules", None) or types.SimpleNamespace()
    for name, logic in _LOGICS.items():
        if name != "Application":
            setattr(modules, name.lower(), _Module(logic))
    slicer.modules = modules


def _register(name: str, logic: Any, app_logic: Any, scene: Any) -> None:
    logic.SetMRMLApplicationLogic(app_logic)
    if scene is not None:
        logic.SetMRMLScene(scene)
    app_logic.SetModuleLogic(name, logic)
    _LOGICS[name] = logic


class _Module:
    """Stands in for ``slicer.modules.<name>``: only ``logic()``, which is what ``slicer.util`` calls."""

    def __init__(self, logic: Any) -> None:
        self._logic = logic

    def logic(self) -> Any:
        return self._logic
