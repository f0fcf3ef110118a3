"""From class scores to a clean label map: threshold or argmax, largest component, hole filling."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a binary mask (empty stays empty)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask
    try:
        import cc3d

        components = cc3d.connected_components(mask, connectivity=26)
    except ImportError:
        from scipy import ndimage

        components, _ = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    counts = np.bincount(components.ravel())
    counts[0] = 0
    return components == counts.argmax()


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill cavities not connected to the image border (3D)."""
    try:
        import fill_voids

        return fill_voids.fill(np.asarray(mask, dtype=bool), in_place=False)
    except ImportError:
        from scipy import ndimage

        return ndimage.binary_fill_holes(mask)


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """Slices enclosing the non-zero voxels, one voxel wider on each side (so hole filling sees the outside)."""
    where = np.argwhere(mask)
    lo = np.maximum(where.min(axis=0) - 1, 0)
    hi = np.minimum(where.max(axis=0) + 2, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def clean_mask(mask: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Largest component and hole filling as ``spec`` asks, computed within the mask's bounding box."""
    if not mask.any():
        return mask
    box = _bounding_box(mask)
    part = mask[box]
    if spec.get("largest_component"):
        part = largest_component(part)
    if spec.get("fill_holes"):
        part = fill_holes(part)
    out = np.zeros_like(mask)
    out[box] = part
    return out


def scores_to_labels(scores: np.ndarray, spec: dict[str, Any], label_values: Sequence[int], foreground_channel: int = 1) -> np.ndarray:
    """(C, X, Y, Z) scores -> label map (uint8/uint16) with the card's label values.

    With ``threshold`` the ``foreground_channel`` score is thresholded into the first label; otherwise channel
    ``c`` of the argmax becomes ``label_values[c - 1]`` (channel 0 is background).
    """
    dtype = np.uint8 if max(label_values) < 256 else np.uint16
    if "threshold" in spec and not spec.get("argmax"):
        mask = clean_mask(scores[foreground_channel] > spec["threshold"], spec)
        return mask.astype(dtype) * dtype(label_values[0])
    winner = scores.argmax(axis=0)
    labels = np.zeros(winner.shape, dtype)
    for channel, value in enumerate(label_values, start=1):
        mask = clean_mask(winner == channel, spec)
        labels[mask] = value
    return labels
