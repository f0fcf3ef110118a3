"""DICOM RT Structure Sets: :func:`write_rtstruct`, :func:`read_rtstruct` and :func:`read_rtstruct_contours`.

The contour convention (pixel-edge polygons, holes as separate contours, even-odd fill at voxel centres) is
described in :mod:`medai.io.dicom.rtstruct.contours`; the writer in :mod:`medai.io.dicom.rtstruct.write`, the reader in
:mod:`medai.io.dicom.rtstruct.read`.
"""

from medai.io.dicom.rtstruct.read import Contour, Roi, StructureSet, read_rtstruct, read_rtstruct_contours
from medai.io.dicom.rtstruct.write import write_rtstruct

__all__ = ["write_rtstruct", "read_rtstruct", "read_rtstruct_contours", "StructureSet", "Roi", "Contour"]
