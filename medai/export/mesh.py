"""Closed surface meshes of a label map, built the way Slicer builds a segment's closed surface.

Slicer's ``vtkBinaryLabelmapToClosedSurfaceConversionRule`` (default method) runs discrete flying edges on the
labelmap, padded by one voxel, in index space (unit spacing, no orientation); decimates with ``vtkDecimatePro``
(feature angle 60°, no splitting, topology preserved, maximum error 1) when asked; smooths with
``vtkWindowedSincPolyDataFilter`` (``int(20 + 40 * smoothing)`` iterations, pass band ``10 ** (-4 * smoothing)``,
no boundary or feature-edge smoothing, non-manifold smoothing on, normalised coordinates: the mapping of Slicer's
2024 "Improve surface smoothing accuracy" change, which slicer-core 5.13 runs); maps the result to world
coordinates with the labelmap's image-to-world matrix and computes consistent point normals without splitting.
:func:`label_surfaces` does the same on the label's bounding box (plus one voxel) with the engine's index-to-LPS
matrix: the meshes are in LPS millimetres and have the vertices of Slicer's surfaces (tests compare them).

One difference, on purpose: when the grid is left-handed (det(direction) < 0) the index-to-world matrix is a
reflection, which turns every triangle inside out. Slicer's rule keeps the reflected winding (its surfaces of such
grids have inward normals); here the triangles are reversed before the normals are computed, so on every grid the
triangles wind counter-clockwise seen from outside, the normals point outward and the signed volume is positive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.export.mesh_files import Surface, triangles_only, write_surfaces
from medai.labels import SegmentLabel
from medai.volume import Volume

#: Slicer's default conversion parameters ("Smoothing factor", "Decimation factor").
DEFAULT_SMOOTHING = 0.5
DEFAULT_DECIMATION = 0.0


def label_surfaces(
    label_map: Volume,
    labels: Sequence[SegmentLabel],
    smoothing: float = DEFAULT_SMOOTHING,
    decimation: float = DEFAULT_DECIMATION,
) -> dict[str, Any]:
    """Closed surfaces (``vtkPolyData``, LPS millimetres, outward normals) by label name.

    ``smoothing`` is Slicer's smoothing factor (0 none .. 1 strong) and ``decimation`` its decimation factor (the
    fraction of triangles to remove, 0 .. below 1). Labels without voxels in the label map have no surface and are
    left out of the result; voxel values no label describes are ignored.
    """
    _check_factors(smoothing, decimation)
    array = np.asarray(label_map.array)
    if array.dtype.kind not in "biu":
        raise MedAIError(f"label maps hold integers, not {array.dtype}")
    _check_labels(labels)
    index_to_lps = label_map.index_to_lps_matrix()
    surfaces: dict[str, Any] = {}
    for label in labels:
        mask = array == label.value
        if mask.any():
            surface = _index_space_surface(mask, smoothing, decimation)
            surfaces[label.name] = _to_world(surface, index_to_lps)
    return surfaces


def write_meshes(
    label_map: Volume,
    labels: Sequence[SegmentLabel],
    folder_or_file: PathLike,
    fmt: str = "stl",
    coordinates: str = "LPS",
    merged: bool = False,
    smoothing: float = DEFAULT_SMOOTHING,
    decimation: float = DEFAULT_DECIMATION,
) -> list[Path]:
    """Write the labels' closed surfaces as STL or OBJ files; returns the files written (OBJ: not the .mtl).

    One file per label that has voxels, named after the label, in the folder ``folder_or_file``; or, with
    ``merged``, one file holding every surface (``folder_or_file`` is then that .stl/.obj file, or a folder that
    gets ``segments.<fmt>``). See :func:`medai.export.mesh_files.write_surfaces` for the formats and for how
    ``coordinates`` ("LPS" as DICOM and Slicer's model files, or "RAS") is recorded in each file.
    """
    surfaces = label_surfaces(label_map, labels, smoothing, decimation)
    if not surfaces:
        raise MedAIError(f"none of the labels {[label.value for label in labels]} has voxels in the label map; there is no surface to write")
    items = [Surface(label.name, label.color, surfaces[label.name]) for label in labels if label.name in surfaces]
    return write_surfaces(items, folder_or_file, fmt=fmt, coordinates=coordinates, merged=merged)


def signed_volume(polydata: Any) -> float:
    """The volume enclosed by a closed triangle surface, positive when its triangles face outward (mm³)."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    polydata = triangles_only(polydata)
    if polydata.GetNumberOfPolys() == 0:
        return 0.0
    points = vtk_to_numpy(polydata.GetPoints().GetData()).astype(float)
    triangles = vtk_to_numpy(polydata.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    a, b, c = (points[triangles[:, n]] for n in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def orient_outward(polydata: Any) -> Any:
    """``polydata`` with triangles and normals reversed if it is inside out (negative signed volume), else itself."""
    return polydata if signed_volume(polydata) >= 0 else _reversed(polydata, normals_too=True)


def _reversed(polydata: Any, normals_too: bool) -> Any:
    """``polydata`` with every cell's winding reversed (and its normals, if asked)."""
    from vtkmodules.vtkFiltersCore import vtkReverseSense

    reverse = vtkReverseSense()
    reverse.SetInputData(polydata)
    reverse.ReverseCellsOn()
    reverse.SetReverseNormals(normals_too)
    reverse.Update()
    return reverse.GetOutput()


def _check_factors(smoothing: float, decimation: float) -> None:
    if not 0.0 <= float(smoothing) <= 1.0:
        raise MedAIError(f"the smoothing factor goes from 0 (none) to 1 (strong), not {smoothing}")
    if not 0.0 <= float(decimation) < 1.0:
        raise MedAIError(f"the decimation factor is the fraction of triangles to remove, from 0 up to (not including) 1, not {decimation}")


def _check_labels(labels: Sequence[SegmentLabel]) -> None:
    values = [label.value for label in labels]
    names = [label.name for label in labels]
    if len(set(values)) != len(values):
        raise MedAIError(f"label values must be distinct; got {values}")
    if len(set(names)) != len(names):
        raise MedAIError(f"label names must be distinct (meshes are named after them); got {names}")


def _index_space_surface(mask: np.ndarray, smoothing: float, decimation: float) -> Any:
    """The surface of a K,J,I boolean mask in continuous I,J,K index coordinates (Slicer's pipeline up to world)."""
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkFiltersCore import vtkDecimatePro, vtkWindowedSincPolyDataFilter
    from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D

    # The mask's bounding box with a one-voxel background margin: the surface closes at the grid's border, and
    # only the voxels that matter go through flying edges. The image origin keeps the points in full-grid indices.
    occupied = np.nonzero(mask)
    low = [int(axis.min()) for axis in occupied]
    high = [int(axis.max()) for axis in occupied]
    block = np.zeros([h - lo + 3 for lo, h in zip(low, high)], np.uint8)
    block[1:-1, 1:-1, 1:-1] = mask[low[0]:high[0] + 1, low[1]:high[1] + 1, low[2]:high[2] + 1]
    image = vtkImageData()
    image.SetDimensions(block.shape[::-1])
    image.SetOrigin(low[2] - 1, low[1] - 1, low[0] - 1)
    image.SetSpacing(1.0, 1.0, 1.0)
    image.GetPointData().SetScalars(numpy_to_vtk(block.ravel(), deep=True))

    flying_edges = vtkDiscreteFlyingEdges3D()
    flying_edges.SetInputData(image)
    flying_edges.SetValue(0, 1)
    flying_edges.ComputeGradientsOff()
    flying_edges.ComputeNormalsOff()
    flying_edges.ComputeScalarsOff()
    flying_edges.Update()
    surface = flying_edges.GetOutput()

    if decimation > 0:
        decimate = vtkDecimatePro()
        decimate.SetInputData(surface)
        decimate.SetFeatureAngle(60)
        decimate.SplittingOff()
        decimate.PreserveTopologyOn()
        decimate.SetMaximumError(1)
        decimate.SetTargetReduction(decimation)
        decimate.Update()
        surface = decimate.GetOutput()

    if smoothing > 0:
        smoother = vtkWindowedSincPolyDataFilter()
        smoother.SetInputData(surface)
        smoother.SetNumberOfIterations(int(20 + smoothing * 40))
        smoother.SetPassBand(10.0 ** (-4.0 * smoothing))
        smoother.BoundarySmoothingOff()
        smoother.FeatureEdgeSmoothingOff()
        smoother.NonManifoldSmoothingOn()
        smoother.NormalizeCoordinatesOn()
        smoother.Update()
        surface = smoother.GetOutput()
    return surface


def _to_world(surface: Any, index_to_world: np.ndarray) -> Any:
    """The index-space surface mapped by the 4x4 ``index_to_world`` matrix, wound outward, with point normals."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkPolyData
    from vtkmodules.vtkFiltersCore import vtkPolyDataNormals

    index_points = vtk_to_numpy(surface.GetPoints().GetData()).astype(float)
    world_points = index_points @ index_to_world[:3, :3].T + index_to_world[:3, 3]
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(world_points), deep=True))
    world = vtkPolyData()
    world.SetPoints(points)
    world.SetPolys(surface.GetPolys())

    if np.linalg.det(index_to_world[:3, :3]) < 0:  # a reflection turns the triangles inside out: turn them back
        world = _reversed(world, normals_too=False)

    normals = vtkPolyDataNormals()
    normals.SetInputData(world)
    normals.ConsistencyOn()  # discrete flying edges may leave inconsistent triangles (as Slicer notes)
    normals.SplittingOff()  # smoothed surfaces have no sharp features to keep
    normals.Update()
    return normals.GetOutput()
