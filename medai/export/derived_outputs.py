"""The outputs made beside a case's label map: DICOM SEG, RTSTRUCT, meshes and a de-identified DICOM set.

Used by ``medai segment`` (``--dicom-seg``, ``--rtstruct``, ``--mesh``, ``--deidentify``). For a batch the
given paths are folders and each case gets its own file or sub-folder in them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from medai.errors import MedAIError
from medai.labels import SegmentLabel
from medai.volume import Volume


@dataclass(frozen=True)
class DerivedOutputs:
    """Where to write each derived output (None: not wanted)."""

    dicom_seg: Optional[Path] = None
    rtstruct: Optional[Path] = None
    mesh_dir: Optional[Path] = None
    mesh_format: str = "stl"
    mesh_coordinates: str = "LPS"
    mesh_merged: bool = False
    deidentify_dir: Optional[Path] = None

    def wanted(self) -> bool:
        return any(p is not None for p in (self.dicom_seg, self.rtstruct, self.mesh_dir, self.deidentify_dir))

    def for_case(self, case: str) -> "DerivedOutputs":
        """The per-case paths inside the batch folders."""
        pick = lambda folder, suffix: None if folder is None else Path(folder) / f"{case}{suffix}"  # noqa: E731
        return replace(self, dicom_seg=pick(self.dicom_seg, "_seg.dcm"), rtstruct=pick(self.rtstruct, "_rtstruct.dcm"),
                       mesh_dir=pick(self.mesh_dir, ""), deidentify_dir=pick(self.deidentify_dir, ""))

    def targets(self) -> list[Path]:
        return [p for p in (self.dicom_seg, self.rtstruct, self.mesh_dir, self.deidentify_dir) if p is not None]

    def check(self, source: Volume, source_path: str, overwrite: bool) -> None:
        """Refuse before any work when an output cannot be made or would replace something."""
        needs_dicom = [flag for flag, p in (("--dicom-seg", self.dicom_seg), ("--rtstruct", self.rtstruct),
                                            ("--deidentify", self.deidentify_dir)) if p is not None]
        if needs_dicom and "dicom" not in source.metadata:
            raise MedAIError(f"{' and '.join(needs_dicom)} need a DICOM series as input", source_path)
        for path in self.targets():
            if not path.parent.is_dir():
                raise MedAIError("the folder to write into does not exist", path.parent)
        for path in (self.dicom_seg, self.rtstruct):
            if path is not None and path.exists() and not overwrite:
                raise MedAIError("already exists; use --overwrite to replace it", path)
        for folder in (self.mesh_dir, self.deidentify_dir):
            if folder is not None and folder.exists() and any(folder.iterdir()):
                raise MedAIError("is a folder that is not empty; give a new or empty folder", folder)


def write_derived(label_map: Volume, labels: list[SegmentLabel], source: Volume, outputs: DerivedOutputs,
                  model_name: str, model_version: str) -> list[Path]:
    """Write every wanted output; on failure remove what this call wrote and re-raise."""
    written: list[Path] = []
    try:
        if outputs.dicom_seg is not None:
            from medai.io.dicom.seg import write_dicom_seg

            written.append(write_dicom_seg(label_map, labels, source, outputs.dicom_seg,
                                           algorithm_name=model_name, algorithm_version=model_version))
        if outputs.rtstruct is not None:
            from medai.io.dicom.rtstruct import write_rtstruct

            written.append(write_rtstruct(label_map, labels, source, outputs.rtstruct,
                                          algorithm_name=model_name, algorithm_version=model_version))
        if outputs.mesh_dir is not None:
            from medai.export.mesh import write_meshes

            if not outputs.mesh_dir.exists():
                outputs.mesh_dir.mkdir()
                written.append(outputs.mesh_dir)
            written += write_meshes(label_map, labels, outputs.mesh_dir, fmt=outputs.mesh_format,
                                    coordinates=outputs.mesh_coordinates, merged=outputs.mesh_merged)
        if outputs.deidentify_dir is not None:
            from medai.io.dicom.deidentify import deidentify_files

            sources = [Path(f) for f in dict.fromkeys(source.metadata["dicom"]["files"])]  # a multi-frame file once
            sources += [p for p in (outputs.dicom_seg, outputs.rtstruct) if p is not None]
            deidentify_files(sources, outputs.deidentify_dir)
            written.append(outputs.deidentify_dir)
    except BaseException:
        for path in written:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        raise
    return written
