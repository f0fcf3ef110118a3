"""Scalar volume nodes <-> :class:`medai.Volume`, and volume files through the engine's reader and writer.

Geometry goes through ``Volume.from_ijk_to_ras`` / ``Volume.ijk_to_ras_matrix`` only. A volume node under a
*linear* parent transform is read in world coordinates: the transform is hardened into the returned
geometry (IJKToRAS in world = parent-to-world matrix @ node IJKToRAS), so the Volume sits where the user
sees it. A scaling or reflecting transform is fine (it goes into spacing and direction); a shearing one
cannot be written as spacing + orthonormal direction and, like a non-linear transform, raises
:class:`MedAIError` asking to harden (resample) it in Slicer first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import slicer
import vtk

from medai.errors import MedAIError, PathLike
from medai.io import read_volume, write_volume
from medai.slicer.headless import init_headless
from medai.slicer.image_data import array_from_image, vtk_compatible
from medai.volume import Volume

#: Node attributes naming where a volume node's DICOM series is on disk (read by the DICOM exports).
FOLDER_ATTRIBUTE = "MedAI.DICOMFolder"
SERIES_ATTRIBUTE = "MedAI.SeriesInstanceUID"


def world_ijk_to_ras(node) -> np.ndarray:
    """The node's 4x4 IJKToRAS in world coordinates (its linear parent transforms applied)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = slicer.util.arrayFromVTKMatrix(matrix)
    transform = node.GetParentTransformNode()
    if transform is None:
        return ijk_to_ras
    if not transform.IsTransformToWorldLinear():
        raise MedAIError(
            f"volume '{node.GetName()}' is under the non-linear transform '{transform.GetName()}'; "
            "harden the transform in Slicer (Transforms module) first"
        )
    to_world = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToWorld(to_world)
    return slicer.util.arrayFromVTKMatrix(to_world) @ ijk_to_ras


def node_grid(node) -> Volume:
    """The node's voxel grid in world coordinates; its array is a zero-copy placeholder of the right shape."""
    image = node.GetImageData()
    if image is None:
        raise MedAIError(f"volume '{node.GetName()}' has no voxels")
    grid = Volume.from_ijk_to_ras(np.broadcast_to(np.uint8(0), image.GetDimensions()[::-1]), world_ijk_to_ras(node))
    if not np.allclose(grid.direction.T @ grid.direction, np.eye(3), atol=1e-6):
        raise MedAIError(
            f"volume '{node.GetName()}' is sheared by its parent transform; harden the transform in Slicer first"
        )
    return grid


def volume_from_node(node) -> Volume:
    """A copy of a scalar (or label map) volume node's voxels on its world geometry."""
    return node_grid(node).with_array(array_from_image(node.GetImageData()), name=node.GetName())


def node_from_volume(volume: Volume, name: str = "Volume", scene=None) -> "slicer.vtkMRMLScalarVolumeNode":
    """A new scalar volume node with ``volume``'s exact voxels and IJKToRAS, shown in grey at a 1-99% window."""
    array = vtk_compatible(volume.array)
    scene = init_headless() if scene is None else scene
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    slicer.util.updateVolumeFromArray(node, array)
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(volume.ijk_to_ras_matrix()))
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(*display_range(volume.array))
    return node


def display_range(array: np.ndarray) -> tuple[float, float]:
    """(low, high) for window/level: the 1st and 99th percentiles (of at most ~1M sampled voxels)."""
    sample = np.asarray(array).ravel()[:: max(1, array.size // 1_000_000)].astype(float)
    low, high = (float(v) for v in np.nanpercentile(sample, [1, 99]))
    if high <= low:
        low, high = float(np.nanmin(sample)), float(np.nanmax(sample))
    return (low, high) if high > low else (low, low + 1.0)


def load_volume_node(path: PathLike, name: Optional[str] = None, scene=None) -> "slicer.vtkMRMLScalarVolumeNode":
    """Read an image file or DICOM series folder with the engine's reader and add it as a volume node."""
    volume = read_volume(path)
    node = node_from_volume(volume, name or name_from_path(path), scene)
    dicom = volume.metadata.get("dicom")
    if dicom:  # remembered so DICOM SEG / RTSTRUCT exports can reference the source images
        node.SetAttribute(FOLDER_ATTRIBUTE, str(Path(dicom["files"][0]).parent) if Path(path).is_file() else str(path))
        node.SetAttribute(SERIES_ATTRIBUTE, dicom["SeriesInstanceUID"])
    return node


def save_volume_node(node, path: PathLike) -> Path:
    """Write a volume node (in world coordinates) with the engine's writer; returns the path written."""
    return write_volume(volume_from_node(node), path)


def name_from_path(path: PathLike) -> str:
    """A node name for a file or folder: ``ct.nii.gz`` -> ``ct``; folders keep their whole name."""
    p = Path(path)
    if p.is_dir():
        return p.name
    return Path(p.name.removesuffix(".gz")).stem or p.name
