"""SimpleITK images <-> :class:`Volume`: the same voxels and the same LPS geometry in another container.

ITK's convention is the engine's (LPS, spacing along I, J, K; arrays K,J,I), so nothing is converted here but the
container; the readers, writers and the resampler share these two functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from medai.errors import MedAIError
from medai.volume import Volume

#: numpy dtypes written after a lossless conversion SimpleITK needs.
_WIDENED = {np.dtype(bool): np.uint8, np.dtype(np.float16): np.float32}


def volume_from_sitk(image, path: Optional[Path] = None) -> Volume:
    """Convert a SimpleITK image (2D or 3D, scalar) to a Volume."""
    import SimpleITK as sitk

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise MedAIError(f"has {image.GetNumberOfComponentsPerPixel()} components per voxel; only scalar images are supported", path)
    dim = image.GetDimension()
    if dim == 2:
        array = sitk.GetArrayFromImage(image)[None]
        spacing = list(image.GetSpacing()) + [1.0]
        origin = list(image.GetOrigin()) + [0.0]
        d = np.array(image.GetDirection()).reshape(2, 2)
        direction = np.eye(3)
        direction[:2, :2] = d
    elif dim == 3:
        array = sitk.GetArrayFromImage(image)
        spacing, origin = image.GetSpacing(), image.GetOrigin()
        direction = np.array(image.GetDirection()).reshape(3, 3)
    else:
        raise MedAIError(f"is {dim}D; only 2D and 3D images are supported", path)
    return Volume(array, spacing, origin, direction, {"source": str(path) if path else None})


def sitk_from_volume(volume: Volume):
    """Convert a Volume to a 3D SimpleITK image with the same voxels and geometry (bool is stored as uint8)."""
    import SimpleITK as sitk

    array = volume.array
    if array.dtype in _WIDENED:
        array = array.astype(_WIDENED[array.dtype])
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing([float(s) for s in volume.spacing])
    image.SetOrigin([float(o) for o in volume.origin])
    image.SetDirection([float(d) for d in volume.direction.ravel()])
    return image
