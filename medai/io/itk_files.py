"""NIfTI, NRRD and MetaImage files through SimpleITK (which reports geometry in LPS)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medai.errors import MedAIError
from medai.volume import Volume


def _first_line(error: Exception) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    # ITK messages read "... itk::ERROR: ... : <the useful part>"; keep the last meaningful line.
    useful = [ln for ln in lines if "ERROR" in ln or "Could not" in ln or "Unable" in ln]
    text = (useful or lines or [type(error).__name__])[-1]
    return text.split("):")[-1].strip()


def read_itk_file(path: Path) -> Volume:
    """Read a 3D (or 2D, as one slice) scalar image; errors name the file."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise MedAIError(f"not a readable image ({_first_line(error)})", path) from None
    return volume_from_sitk(image, path)


def volume_from_sitk(image, path: Path | None = None) -> Volume:
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
    """Convert a Volume to a 3D SimpleITK image with the same voxels and geometry."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array))
    image.SetSpacing([float(s) for s in volume.spacing])
    image.SetOrigin([float(o) for o in volume.origin])
    image.SetDirection([float(d) for d in volume.direction.ravel()])
    return image


def write_itk_file(volume: Volume, path: Path) -> Path:
    """Write atomically: a partial file never sits at ``path``."""
    import SimpleITK as sitk

    from medai.io.dispatch import atomic_target

    tmp = atomic_target(path)
    try:
        sitk.WriteImage(sitk_from_volume(volume), str(tmp), useCompression=True)
        os.replace(tmp, path)
    except RuntimeError as error:
        raise MedAIError(f"could not write ({_first_line(error)})", path) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
