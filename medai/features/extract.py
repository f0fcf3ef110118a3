"""Features of one segment of a volume: first-order, 3D shape and GLCM, named as pyradiomics names them."""

from __future__ import annotations

from typing import Optional

import numpy as np

from medai.errors import MedAIError
from medai.features import firstorder, glcm, shape
from medai.features.discretisation import discretise
from medai.features.settings import FeatureSettings
from medai.volume import Volume

#: Every feature, in output order: ``original_<class>_<feature>`` as in pyradiomics' output.
FEATURE_NAMES: tuple[str, ...] = tuple(
    f"original_{group}_{name}"
    for group, names in (("shape", shape.NAMES), ("firstorder", firstorder.NAMES), ("glcm", glcm.NAMES))
    for name in names
)


def extract_features(image: Volume, mask: Volume, settings: Optional[FeatureSettings] = None) -> dict[str, float]:
    """Features of the voxels of ``mask`` equal to ``settings.label``, on ``image``'s intensities.

    The mask must lie on the image's grid (resample it first with :mod:`medai.resample`); geometry enters
    only through the voxel spacing, as in pyradiomics (features do not depend on orientation).
    """
    settings = settings or FeatureSettings()
    if not image.same_grid(mask):
        raise MedAIError(f"the mask is not on the image's grid (image {image.array.shape[::-1]} voxels at "
                         f"{np.round(image.spacing, 4).tolist()} mm, mask {mask.array.shape[::-1]} at "
                         f"{np.round(mask.spacing, 4).tolist()} mm, or origin/direction differ)")
    roi = mask.array == settings.label
    if not roi.any():
        raise MedAIError(f"the mask has no voxel with label {settings.label}")
    box = _bounding_box(roi)
    roi = roi[box]
    intensities = np.asarray(image.array[box], dtype=float)
    if not np.all(np.isfinite(intensities[roi])):
        raise MedAIError("the image has NaN or infinite values inside the mask")
    values = intensities[roi]
    levels = np.zeros(roi.shape, dtype=np.int64)
    levels[roi] = discretise(values, settings)
    features = {}
    for name, value in shape.shape_features(roi, image.spacing[::-1]).items():
        features[f"original_shape_{name}"] = value
    first = firstorder.firstorder_features(values, levels[roi], float(np.prod(image.spacing)), settings.voxelArrayShift)
    for name, value in first.items():
        features[f"original_firstorder_{name}"] = value
    for name, value in glcm.glcm_features(levels, roi, settings.distances).items():
        features[f"original_glcm_{name}"] = value
    return {name: features[name] for name in FEATURE_NAMES}


def _bounding_box(roi: np.ndarray) -> tuple[slice, ...]:
    """Slices of the smallest block holding every True voxel of ``roi``."""
    box = []
    for axis in range(roi.ndim):
        present = np.flatnonzero(roi.any(axis=tuple(a for a in range(roi.ndim) if a != axis)))
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(box)
