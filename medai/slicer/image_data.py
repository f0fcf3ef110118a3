"""numpy K,J,I arrays <-> VTK image data (voxels only; geometry stays with :class:`medai.Volume`)."""

from __future__ import annotations

import numpy as np
import slicer
from vtkmodules.util import numpy_support

from medai.errors import MedAIError


def smallest_int_dtype(low: int, high: int) -> np.dtype:
    """The smallest integer type holding ``low..high``; 64-bit types are refused (VTK images reject them)."""
    dtype = np.result_type(np.min_scalar_type(int(low)), np.min_scalar_type(int(high)))
    if dtype.itemsize > 4:
        raise MedAIError(f"voxel values {low}..{high} do not fit a 32-bit integer")
    return dtype


def vtk_compatible(array: np.ndarray) -> np.ndarray:
    """``array`` in a type VTK images hold: bool as uint8, 64-bit integers as the smallest type for their range."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype.kind in "iu" and array.dtype.itemsize == 8:
        low, high = (array.min(), array.max()) if array.size else (0, 0)
        return array.astype(smallest_int_dtype(low, high))
    if array.dtype.kind not in "iuf":
        raise MedAIError(f"voxels of type {array.dtype} cannot go into a Slicer volume")
    return array


def oriented_image(array: np.ndarray, ijk_to_ras: np.ndarray) -> "slicer.vtkOrientedImageData":
    """A ``vtkOrientedImageData`` holding a copy of the K,J,I ``array`` with the given IJKToRAS matrix."""
    array = vtk_compatible(np.asarray(array))
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(array.shape[::-1])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True))
    image.SetImageToWorldMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras))
    return image


def array_from_image(image) -> np.ndarray:
    """A copy of a one-component VTK image's voxels as a K,J,I array."""
    if image.GetNumberOfScalarComponents() != 1:
        raise MedAIError(f"the image has {image.GetNumberOfScalarComponents()} components per voxel; only scalar images are supported")
    shape = image.GetDimensions()[::-1]
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(shape).copy()
