"""Closest canonical orientation: reorder and flip voxel axes (no resampling) so they point along RAS (or LPS).

This is what ``nibabel.as_closest_canonical`` does and what networks trained on canonical images expect.
The inverse is exact, so results map back onto the input grid voxel for voxel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medai.volume import LPS_TO_RAS, Volume


@dataclass(frozen=True)
class Reorientation:
    """Output axis ``n`` (in I,J,K order) takes input axis ``perm[n]``, reversed where ``flip[n]``."""

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]

    def apply(self, array_ijk: np.ndarray) -> np.ndarray:
        """Input-order I,J,K array (optionally with leading channel axes) -> canonical order."""
        lead = array_ijk.ndim - 3
        out = np.transpose(array_ijk, tuple(range(lead)) + tuple(lead + p for p in self.perm))
        flips = tuple(lead + n for n, f in enumerate(self.flip) if f)
        return np.flip(out, flips) if flips else out

    def invert(self, array_canonical: np.ndarray) -> np.ndarray:
        """Canonical-order array -> the input's I,J,K order (exact inverse of :meth:`apply`)."""
        lead = array_canonical.ndim - 3
        flips = tuple(lead + n for n, f in enumerate(self.flip) if f)
        out = np.flip(array_canonical, flips) if flips else array_canonical
        inverse = np.argsort(self.perm)
        return np.transpose(out, tuple(range(lead)) + tuple(lead + int(p) for p in inverse))


def spacing_in_voxel_axes(volume: Volume, spacing, target: str = "RAS") -> np.ndarray:
    """A card's ``spacing``, given along the canonical axes (X, Y, Z after reorientation to ``target``, as in
    MONAI's Orientationd-then-Spacingd), as spacings along ``volume``'s own I, J, K axes."""
    reorientation = canonical_reorientation(volume, target)
    out = np.empty(3)
    for n, axis in enumerate(reorientation.perm):
        out[axis] = float(spacing[n])
    return out


def canonical_reorientation(volume: Volume, target: str = "RAS") -> Reorientation:
    """The axis reordering and flips bringing ``volume``'s voxel axes closest to ``target`` (RAS or LPS)."""
    if target not in ("RAS", "LPS"):
        raise ValueError(f"unknown orientation {target!r}")
    world = LPS_TO_RAS @ volume.direction if target == "RAS" else volume.direction.copy()
    # Greedy assignment on the largest cosines: each world axis gets the voxel axis closest to it.
    remaining = np.abs(world)
    perm = [0, 0, 0]
    flip = [False, False, False]
    for _ in range(3):
        w, a = np.unravel_index(np.argmax(remaining), remaining.shape)
        perm[w] = int(a)
        flip[w] = bool(world[w, a] < 0)
        remaining[w, :] = -1
        remaining[:, a] = -1
    return Reorientation(tuple(perm), tuple(flip))
