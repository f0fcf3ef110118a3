"""What a classification network sees: a canonical image cut into 2D slices (2D networks) or taken whole (3D).

The same functions cut the training slices of a recipe (``recipes/image_type``) and the slices a model sees at
inference, so both see identical pixels:

* the image is reordered and flipped (no resampling) to the card's canonical orientation (RAS by default);
* a 2D network takes slices across the image's *slice axis*: the thin axis of a 2D image (a single slice, an
  X-ray, a PNG; or a stack of at most :data:`THIN` slices), else the canonical S axis (axial slices);
* each slice (or the whole image for a 3D network) is resized to the card's ``input_size`` exactly as
  ``medai train`` does (:func:`medai.pipeline.inference.resize_tensor`, trilinear), then normalised by
  :func:`medai.pipeline.intensity.normalize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from medai.pipeline.orientation import Reorientation, canonical_reorientation
from medai.volume import Volume

#: An axis this short (in voxels) is the slice axis of a "2D" image: a single slice or a few frames.
THIN = 3
#: Slices for a volume's probabilities come from the middle part of its slice axis (the ends are often empty).
CENTRAL_FRACTION = 0.8


@dataclass
class CanonicalImage:
    """An image's voxels in canonical (X, Y, Z) order, and how to put canonical arrays back on its grid.

    ``voxels`` is a view of the input's array (axes reordered and flipped, any dtype): only the slices asked for
    are copied to float32, which keeps a look at a few slices of a large volume cheap.
    """

    voxels: np.ndarray
    reorientation: Optional[Reorientation]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.voxels.shape)

    @property
    def slice_axis(self) -> int:
        """The canonical axis 2D slices are taken across: the thinnest if it is thin, else Z (axial)."""
        shape = np.array(self.shape)
        thinnest = int(np.argmin(shape))
        return thinnest if shape[thinnest] <= THIN else 2

    def slice_indices(self, count: int) -> np.ndarray:
        """Up to ``count`` evenly spaced slice positions in the central part of the slice axis."""
        n = self.shape[self.slice_axis]
        if n <= THIN:
            return np.arange(n)
        margin = (1 - CENTRAL_FRACTION) / 2
        low, high = int(np.floor(n * margin)), int(np.ceil(n * (1 - margin))) - 1
        return np.unique(np.round(np.linspace(low, high, min(count, high - low + 1))).astype(int))

    def slices(self, indices: Optional[Sequence[int]] = None) -> np.ndarray:
        """Float32 slices (N, A, B) across the slice axis (all when ``indices`` is None); A, B keep X, Y, Z order."""
        moved = np.moveaxis(self.voxels, self.slice_axis, 0)
        return finite_float32(moved if indices is None else moved[np.asarray(indices)])

    def whole(self) -> np.ndarray:
        """The whole canonical image as float32."""
        return finite_float32(self.voxels)

    def from_slices(self, stack: np.ndarray) -> np.ndarray:
        """Inverse of ``slices()`` for every slice: (N, A, B) -> a canonical (X, Y, Z) array."""
        return np.moveaxis(stack, 0, self.slice_axis)

    def to_input_grid(self, canonical_xyz: np.ndarray) -> np.ndarray:
        """A canonical (X, Y, Z) array as a K,J,I array on the input's grid (exact: axes reordered and flipped)."""
        ijk = canonical_xyz if self.reorientation is None else self.reorientation.invert(canonical_xyz)
        return np.ascontiguousarray(ijk.transpose(2, 1, 0))


def finite_float32(array: np.ndarray) -> np.ndarray:
    """A contiguous float32 copy of ``array`` with NaN and infinite values set to 0 (as every pipeline does)."""
    out = np.array(array, dtype=np.float32, order="C", copy=True)
    return np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def canonical_image(volume: Volume, orientation: str = "RAS") -> CanonicalImage:
    """``volume``'s voxels viewed in ``orientation`` ('RAS', 'LPS' or 'none'): no copy is made."""
    reorientation = canonical_reorientation(volume, orientation) if orientation != "none" else None
    voxels = volume.array.transpose(2, 1, 0)
    return CanonicalImage(voxels if reorientation is None else reorientation.apply(voxels), reorientation)


def slice_batch(slices: np.ndarray, input_size: Sequence[int], intensity: dict[str, Any]):
    """(N, A, B) slices -> the (N, 1, X, Y) float32 tensor a 2D network takes (resized, then normalised)."""
    import torch

    from medai.pipeline.inference import resize_tensor
    from medai.pipeline.intensity import normalize

    size = (int(input_size[0]), int(input_size[1]), 1)
    batch = [normalize(resize_tensor(torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))[None, :, :, None],
                               size, "trilinear"), intensity)[..., 0] for s in slices]
    return torch.stack(batch)


def volume_batch(array_xyz: np.ndarray, input_size: Sequence[int], intensity: dict[str, Any]):
    """A canonical (X, Y, Z) array -> the (1, 1, X, Y, Z) tensor a 3D network takes (resized, then normalised)."""
    import torch

    from medai.pipeline.inference import resize_tensor
    from medai.pipeline.intensity import normalize

    x = torch.from_numpy(np.ascontiguousarray(array_xyz, dtype=np.float32))[None]
    return normalize(resize_tensor(x, [int(s) for s in input_size], "trilinear"), intensity)[None]
