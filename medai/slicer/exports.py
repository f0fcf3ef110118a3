"""Segmentation node -> mesh files (STL / OBJ), from the closed surfaces Slicer itself shows.

:func:`export_segmentation_meshes` takes each segment's closed surface from Slicer
(``vtkSlicerSegmentationsModuleLogic.GetSegmentClosedSurfaceRepresentation``: the surface already shown in 3D
if there is one, else a conversion with the node's own conversion parameters; world coordinates, parent
transforms applied) and writes it with the engine's writer (:func:`medai.export.write_surfaces`), so files from
the console API and from ``medai`` have one format, one naming rule and one header.

Slicer's ``ExportSegmentsClosedSurfaceRepresentationToFiles`` writes the same vertices and triangles (the tests
compare them) but is not used for the files because it names per-segment files ``<node>_<segment name>.stl``
without cleaning the segment name (a ``/`` in it breaks the path), writes in place (a failure leaves a partial
file), writes OBJ only merged, and keeps the inside-out winding of surfaces of left-handed grids (see
:mod:`medai.export.mesh`); here every surface is turned outward before writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import slicer
import vtk

from medai.errors import MedAIError, PathLike
from medai.export.mesh import orient_outward
from medai.export.mesh_files import Surface, lps_ras_swapped, write_surfaces


def export_segmentation_meshes(
    seg_node,
    folder: PathLike,
    fmt: str = "stl",
    coordinates: str = "LPS",
    merged: bool = False,
    segment_ids: Optional[Sequence[str]] = None,
) -> list[Path]:
    """Write the segments' closed surfaces as STL or OBJ; returns the mesh files written.

    One file per non-empty segment, named after the segment, in ``folder``; or with ``merged`` one file named
    after the node (``folder`` may also be the .stl/.obj file itself). ``coordinates`` is "LPS" (as Slicer's own
    export defaults to) or "RAS", and is written into each file's header. ``segment_ids`` picks segments (all by
    default). Empty segments are skipped; a node with no non-empty segment raises :class:`MedAIError`.
    """
    segmentation = seg_node.GetSegmentation()
    ids = list(segment_ids) if segment_ids is not None else list(segmentation.GetSegmentIDs())
    unknown = [segment_id for segment_id in ids if segmentation.GetSegment(segment_id) is None]
    if unknown:
        raise MedAIError(f"segmentation '{seg_node.GetName()}' has no segments {unknown}")
    display = seg_node.GetDisplayNode()
    surfaces = []
    for segment_id in ids:
        segment = segmentation.GetSegment(segment_id)
        polydata = vtk.vtkPolyData()
        if not slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentClosedSurfaceRepresentation(seg_node, segment_id, polydata, True):
            raise MedAIError(f"Slicer could not make a closed surface of segment '{segment.GetName()}' of '{seg_node.GetName()}'")
        if polydata.GetNumberOfPolys() == 0:
            continue
        color = display.GetSegmentColor(segment_id) if display is not None else segment.GetColor()
        surfaces.append(Surface(segment.GetName(), tuple(color), orient_outward(lps_ras_swapped(polydata))))
    if not surfaces:
        raise MedAIError(f"segmentation '{seg_node.GetName()}' has no non-empty segment to export", folder)
    return write_surfaces(surfaces, folder, fmt=fmt, coordinates=coordinates, merged=merged, merged_name=seg_node.GetName())
