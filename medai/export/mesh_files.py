"""Writing surfaces as STL or OBJ files, in LPS or RAS, each file stating its coordinate system as Slicer does.

* STL: binary (as Slicer's segmentation export writes it); the 80-byte header reads
  ``MedAI output. SPACE=LPS`` (or ``SPACE=RAS``). Slicer's model reader looks for ``SPACE=LPS`` / ``SPACE=RAS``
  in an STL header (``vtkMRMLModelStorageNode``), so Slicer loads the files where they belong. STL has no
  colour; a merged STL is one solid.
* OBJ: text, first line ``# MedAI output. SPACE=LPS`` (the comment Slicer's reader checks), one object per
  surface with point normals, and a ``.mtl`` beside it giving each object its segment colour as diffuse colour.

Files named after segments go through :func:`safe_file_name`. Every file is written into a hidden staging folder
beside its final place and moved there once complete (an OBJ's ``.mtl`` before the ``.obj``), so no reader ever
sees half a mesh.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.io.atomic import staging_folder

FORMATS = ("stl", "obj")
COORDINATES = ("LPS", "RAS")
#: The file of a merged export given a folder rather than a file name.
MERGED_NAME = "segments"


@dataclass(frozen=True)
class Surface:
    """A named, coloured closed surface: ``polydata`` is a ``vtkPolyData`` in LPS millimetres."""

    name: str
    color: tuple[float, float, float]
    polydata: Any


def safe_file_name(name: str, fallback: str = "segment") -> str:
    """``name`` as a portable file name: letters, digits and ``-_.()`` kept, anything else becomes ``_``.

    Leading dots and underscores go (no hidden files), and an empty result becomes ``fallback``.
    """
    safe = re.sub(r"[^A-Za-z0-9\-_.()]+", "_", name.strip()).strip("._")
    return safe or fallback


def header(coordinates: str) -> str:
    """The text that names the coordinate system in a file, in Slicer's ``SPACE=`` convention."""
    return f"MedAI output. SPACE={coordinates}"


def write_surfaces(
    surfaces: Sequence[Surface],
    folder_or_file: PathLike,
    fmt: str = "stl",
    coordinates: str = "LPS",
    merged: bool = False,
    merged_name: str = MERGED_NAME,
) -> list[Path]:
    """Write ``surfaces`` (LPS) as STL or OBJ in ``coordinates``; returns the mesh files written, in order.

    Without ``merged``: one file per surface in the folder ``folder_or_file`` (created if its parent exists),
    named after the surface (made safe and unique; same-named files are replaced). With ``merged``: one file,
    either ``folder_or_file`` itself when it ends in ``.stl``/``.obj`` (matching ``fmt``) or ``<merged_name>.<fmt>``
    in that folder. Surfaces without triangles are skipped; if none has any, nothing is written and a
    :class:`MedAIError` says so.
    """
    fmt = str(fmt).lower().lstrip(".")
    coordinates = str(coordinates).upper()
    if fmt not in FORMATS:
        raise MedAIError(f"meshes are written as {' or '.join(FORMATS)}, not {fmt!r}")
    if coordinates not in COORDINATES:
        raise MedAIError(f"mesh coordinates are {' or '.join(COORDINATES)}, not {coordinates!r}")
    surfaces = [s for s in surfaces if s.polydata is not None and s.polydata.GetNumberOfPolys() > 0]
    if not surfaces:
        raise MedAIError("there is no surface to write (every segment is empty)", folder_or_file)
    folder, names = _targets(Path(folder_or_file), fmt, merged, merged_name, surfaces)
    created = not folder.exists()
    if created:
        folder.mkdir()
    try:
        with staging_folder(folder) as staged:
            groups = [surfaces] if merged else [[s] for s in surfaces]
            for group, name in zip(groups, names):
                _write(group, staged / name, fmt, coordinates)
            for name in names:
                if fmt == "obj":
                    os.replace(staged / Path(name).with_suffix(".mtl").name, folder / Path(name).with_suffix(".mtl").name)
                os.replace(staged / name, folder / name)
    except BaseException:
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    return [folder / name for name in names]


def _targets(target: Path, fmt: str, merged: bool, merged_name: str, surfaces: Sequence[Surface]) -> tuple[Path, list[str]]:
    """The folder to write into and the file names in it."""
    if target.suffix.lower() in {f".{f}" for f in FORMATS}:
        if not merged:
            raise MedAIError("one mesh per segment goes into a folder; give a folder, or ask for one merged file", target)
        if target.suffix.lower() != f".{fmt}":
            raise MedAIError(f"the file name ends in {target.suffix} but the format asked for is {fmt}", target)
        folder, names = target.parent, [target.name]
    else:
        folder = target
        if merged:
            names = [f"{safe_file_name(merged_name, MERGED_NAME)}.{fmt}"]
        else:
            names = _unique([safe_file_name(s.name) for s in surfaces], fmt)
    if folder.exists() and not folder.is_dir():
        raise MedAIError("is a file, not a folder to write meshes into", folder)
    if not folder.exists() and not folder.parent.is_dir():
        raise MedAIError("the folder to write into does not exist", folder.parent)
    return folder, names


def _unique(stems: list[str], fmt: str) -> list[str]:
    """``<stem>.<fmt>`` names, distinct even on case-insensitive file systems (``_2``, ``_3``… appended)."""
    seen: set[str] = set()
    names = []
    for stem in stems:
        candidate, n = stem, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{stem}_{n}"
        seen.add(candidate.lower())
        names.append(f"{candidate}.{fmt}")
    return names


def _in_coordinates(polydata: Any, coordinates: str) -> Any:
    """``polydata`` (LPS) in ``coordinates``."""
    return polydata if coordinates == "LPS" else lps_ras_swapped(polydata)


def lps_ras_swapped(polydata: Any) -> Any:
    """A copy of ``polydata`` with x and y of points and normals negated: LPS <-> RAS (a rotation, no reflection)."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkPolyData

    flip = np.array([-1.0, -1.0, 1.0])
    out = vtkPolyData()
    out.ShallowCopy(polydata)
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(vtk_to_numpy(polydata.GetPoints().GetData()) * flip), deep=True))
    out.SetPoints(points)
    normals = polydata.GetPointData().GetNormals()
    if normals is not None:
        flipped = numpy_to_vtk(np.ascontiguousarray(vtk_to_numpy(normals) * flip), deep=True)
        flipped.SetName(normals.GetName())
        out.GetPointData().SetNormals(flipped)
    return out


def _write(group: Sequence[Surface], path: Path, fmt: str, coordinates: str) -> None:
    polys = [_in_coordinates(s.polydata, coordinates) for s in group]
    if fmt == "stl":
        _write_stl(polys, path, coordinates)
    else:
        _write_obj(group, polys, path, coordinates)


def _write_stl(polys: list, path: Path, coordinates: str) -> None:
    from vtkmodules.vtkFiltersCore import vtkAppendPolyData, vtkTriangleFilter
    from vtkmodules.vtkIOGeometry import vtkSTLWriter

    append = vtkAppendPolyData()
    for poly in polys:
        append.AddInputData(poly)
    triangulate = vtkTriangleFilter()
    triangulate.SetInputConnection(append.GetOutputPort())
    writer = vtkSTLWriter()
    writer.SetInputConnection(triangulate.GetOutputPort())
    writer.SetFileName(str(path))
    writer.SetFileTypeToBinary()
    writer.SetHeader(header(coordinates))
    if writer.Write() != 1 or not path.is_file():
        raise MedAIError("VTK could not write the STL file", path)


def _write_obj(group: Sequence[Surface], polys: list, path: Path, coordinates: str) -> None:
    """Wavefront OBJ with one object and one material per surface, normals per vertex, 1-based indices."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    mtl = path.with_suffix(".mtl")
    obj_text = io.StringIO()
    mtl_text = io.StringIO()
    obj_text.write(f"# {header(coordinates)}\nmtllib {mtl.name}\n")
    mtl_text.write(f"# {header(coordinates)}\n")
    offset = 0
    for index, (surface, poly) in enumerate(zip(group, polys), start=1):
        poly = triangles_only(poly)
        points = vtk_to_numpy(poly.GetPoints().GetData()).astype(float)
        triangles = vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3) + offset + 1
        normals = poly.GetPointData().GetNormals()
        object_name = safe_file_name(surface.name, f"segment_{index}")
        material = f"{object_name}_{index}"
        obj_text.write(f"o {object_name}\nusemtl {material}\n")
        np.savetxt(obj_text, points, fmt="v %.6f %.6f %.6f")
        if normals is not None:
            np.savetxt(obj_text, vtk_to_numpy(normals).astype(float), fmt="vn %.6f %.6f %.6f")
            faces = np.repeat(triangles, 2, axis=1)
            np.savetxt(obj_text, faces, fmt="f %d//%d %d//%d %d//%d")
        else:
            np.savetxt(obj_text, triangles, fmt="f %d %d %d")
        offset += len(points)
        r, g, b = (float(c) for c in surface.color)
        mtl_text.write(f"newmtl {material}\nKa 0 0 0\nKd {r:.6f} {g:.6f} {b:.6f}\nKs 0.1 0.1 0.1\nNs 10\nd 1\nillum 2\n")
    mtl.write_text(mtl_text.getvalue(), encoding="utf-8")
    path.write_text(obj_text.getvalue(), encoding="utf-8")


def triangles_only(polydata: Any) -> Any:
    """``polydata`` itself when every cell is a triangle, else its triangulation."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkFiltersCore import vtkTriangleFilter

    offsets = vtk_to_numpy(polydata.GetPolys().GetOffsetsArray())
    if polydata.GetNumberOfVerts() == 0 and polydata.GetNumberOfLines() == 0 and np.all(np.diff(offsets) == 3):
        return polydata
    triangulate = vtkTriangleFilter()
    triangulate.SetInputData(polydata)
    triangulate.PassVertsOff()
    triangulate.PassLinesOff()
    triangulate.Update()
    return triangulate.GetOutput()
