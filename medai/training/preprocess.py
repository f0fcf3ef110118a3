"""Turning images (and label maps) into network input exactly as the packaged model's pipeline will.

Segmentation (what ``medai.pipeline.segment.Segmenter`` does with the card this training writes):
NaN/inf -> 0; optionally resampled (linear; labels nearest) to ``spacing`` (given along the canonical RAS axes,
as in MONAI's Orientationd-then-Spacingd) on a grid with the image's own direction
(:func:`medai.resample.grid_like`); reordered and flipped to canonical RAS (:mod:`medai.pipeline.orientation`, no
resampling); the whole image normalised by
:func:`medai.pipeline.intensity.normalize`; then patches (training) or a sliding window (validation, inference).

Classification (the card's ``whole`` mode with ``input_size``): the classification pipeline's own input code
(:mod:`medai.pipeline.classify_input`): canonical RAS, then a 3D network (``input_size`` Z > 1) sees the whole
image resized (trilinear) to ``input_size`` (a 2D image is a one-slice volume, its slice repeated along Z); a 2D
network (``input_size`` Z = 1) sees slices across the image's slice axis resized to X, Y -- in training the
middle slice of a volume, the only slice of a 2D image. The resized input is normalised by the same
``normalize``; the network's logits go through softmax.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.volume import Volume


def finite_float(volume: Volume) -> Volume:
    """``volume`` as float32 with NaN and infinite voxels set to 0 (as the inference pipelines do)."""
    return volume.with_array(np.nan_to_num(volume.array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0))


def canonical(array_kji: np.ndarray, volume: Volume) -> np.ndarray:
    """A K,J,I array on ``volume``'s grid as a canonical RAS X,Y,Z array (a view: axes reordered and flipped)."""
    from medai.pipeline.orientation import canonical_reorientation

    return canonical_reorientation(volume, "RAS").apply(array_kji.transpose(2, 1, 0))


def segmentation_arrays(image: Volume, label: Optional[Volume], spacing: Optional[Sequence[float]],
                        label_path: Optional[PathLike] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Canonical (X, Y, Z) float32 image and integer label arrays, resampled to ``spacing`` if given.

    A label map on another grid than its image is resampled (nearest) onto the image's grid first.
    """
    from medai.pipeline.orientation import spacing_in_voxel_axes
    from medai.resample import grid_like, resample_to_grid

    work = finite_float(image)
    if label is not None:
        if not np.array_equal(label.array, np.round(label.array)):
            raise MedAIError("is not a label map: it holds non-integer values", label_path)
        if not label.same_grid(work, tol=1e-3):
            labelled = bool(label.array.any())
            label = resample_to_grid(label, work, "nearest")
            if labelled and not label.array.any():
                raise MedAIError("label map does not overlap its image in space", label_path)
        label = label.with_array(label.array.astype(np.int32))
    if spacing is not None:
        grid = grid_like(work, spacing=spacing_in_voxel_axes(work, spacing, "RAS"))
        work = resample_to_grid(work, grid, "linear")
        if label is not None:
            label = resample_to_grid(label, grid, "nearest")
    image_xyz = np.ascontiguousarray(canonical(work.array, work))
    label_xyz = None if label is None else np.ascontiguousarray(canonical(label.array, work))
    return image_xyz, label_xyz


def classification_input(volume: Volume, input_size: Sequence[int], intensity: dict[str, Any]):
    """The normalised network input for ``volume``: (1, X, Y, Z) for a 3D network, (1, X, Y) for a 2D one.

    Built by the classification pipeline's own functions (:mod:`medai.pipeline.classify_input`); a 2D network
    trains on the middle slice across the image's slice axis (the only slice of a 2D image).
    """
    from medai.pipeline.classify_input import canonical_image, slice_batch, volume_batch

    image = canonical_image(volume, "RAS")
    stack = image.slices()  # (N, A, B) across the slice axis
    if int(input_size[2]) == 1:
        return slice_batch(stack[[len(stack) // 2]], input_size, intensity)[0]
    return volume_batch(image.from_slices(stack), input_size, intensity)[0]
