"""Input checks before a model runs: the image must be something the model can take.

Impossible input (wrong dimensionality, too small, no finite voxels, a constant image) raises
:class:`MedAIError`; suspicious input (values typical of another modality, some NaN voxels) gives warnings. What
the built-in ``image-type`` model judges the image to be is a separate check
(:mod:`medai.pipeline.modality_check`), which the pipelines are given by their callers.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.models.card import ModelCard
from medai.volume import Volume


def check_input(volume: Volume, card: ModelCard, source: Optional[PathLike] = None,
                modality: Optional[str] = None) -> list[str]:
    """Raise for input ``card``'s model cannot take; return warnings for suspicious input.

    ``modality``: what this image should be (a channel's own modality), default the card's.
    """
    warnings: list[str] = []
    size = np.array(volume.size_ijk)
    if card.input["dimensions"] == 3 and (size <= 1).any():
        raise MedAIError(f"is a 2D image ({size[0]}x{size[1]}); model '{card.id}' needs a 3D volume", source)
    minimum = np.array(card.input.get("min_size", [1, 1, 1]))
    if (np.sort(size) < np.sort(minimum)).any():
        raise MedAIError(f"is too small ({'x'.join(map(str, size))} voxels) for model '{card.id}'", source)
    array = volume.array
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.any():
            raise MedAIError("has no finite voxel values (all NaN or infinite)", source)
        if not finite.all():
            warnings.append(f"{(~finite).mean():.1%} of voxels are NaN or infinite; they are treated as 0")
        values = array[finite]
    else:
        values = array
    low, high = float(values.min()), float(values.max())
    if low == high:
        raise MedAIError(f"is a constant image (every voxel is {low:g}); there is nothing to "
                         f"{'segment' if card.task == 'segmentation' else 'classify'}", source)
    modality = modality or card.modality
    if modality == "MR" and low < -500 and high > 500:
        warnings.append(f"intensities range from {low:g} to {high:g}, typical of CT in Hounsfield units, "
                        f"but model '{card.id}' expects MR")
    if modality == "CT" and (low >= 0 or high < 200):
        warnings.append(f"intensities range from {low:g} to {high:g}; CT in Hounsfield units normally reaches "
                        f"-1000 (air); model '{card.id}' expects CT")
    return warnings
