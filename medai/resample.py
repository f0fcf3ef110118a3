"""Resampling between grids, in physical (LPS) space. The one place voxels are moved between grids."""

from __future__ import annotations

import numpy as np

from medai.volume import Volume

_INTERPOLATORS = {"nearest": "sitkNearestNeighbor", "linear": "sitkLinear", "bspline": "sitkBSpline"}


def resample_to_grid(volume: Volume, reference: Volume, interpolation: str = "linear", default: float = 0.0) -> Volume:
    """``volume`` resampled onto ``reference``'s grid (shape, spacing, origin, direction).

    Use ``nearest`` for label maps. Points of the reference grid outside ``volume`` get ``default``.
    The result keeps ``volume``'s dtype for ``nearest`` and is float32 otherwise.
    """
    import SimpleITK as sitk

    from medai.sitk_image import sitk_from_volume

    if volume.same_grid(reference, tol=1e-9):
        return reference.with_array(volume.array.copy())
    moving = sitk_from_volume(volume)
    if interpolation != "nearest" and volume.array.dtype != np.float32:
        moving = sitk.Cast(moving, sitk.sitkFloat32)
    out = sitk.Resample(
        moving,
        sitk_from_volume(reference.with_array(np.zeros(reference.array.shape, np.uint8))),
        sitk.Transform(),
        getattr(sitk, _INTERPOLATORS[interpolation]),
        float(default),
    )
    return reference.with_array(sitk.GetArrayFromImage(out))


def grid_like(volume: Volume, spacing=None, direction=None, margin_mm: float = 0.0) -> Volume:
    """An empty grid covering ``volume``'s physical extent (plus ``margin_mm``) with the given spacing/direction.

    Used to build oblique or anisotropic grids that still contain the whole image.
    """
    spacing = volume.spacing if spacing is None else np.asarray(spacing, float)
    direction = volume.direction if direction is None else np.asarray(direction, float)
    size = np.array(volume.size_ijk)
    corners = np.array([[i, j, k] for i in (-0.5, size[0] - 0.5) for j in (-0.5, size[1] - 0.5) for k in (-0.5, size[2] - 0.5)])
    lps = volume.lps_points(corners)
    # corner coordinates in the new frame
    local = lps @ direction
    lo, hi = local.min(axis=0) - margin_mm, local.max(axis=0) + margin_mm
    n = np.maximum(1, np.ceil((hi - lo) / spacing).astype(int))
    first_centre_local = lo + spacing / 2
    origin = direction @ first_centre_local
    return Volume(np.zeros(n[::-1], np.uint8), spacing, origin, direction)
