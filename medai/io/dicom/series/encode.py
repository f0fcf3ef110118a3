"""Fitting voxel values into 16-bit DICOM pixel data, exactly when possible.

Rule (first that applies):

1. whole numbers within int16 or uint16 are stored as they are, slope 1, intercept 0 (signed storage first
   for signed and float sources, unsigned first for unsigned ones: DICOM has no 8-bit CT, so uint8 comes
   back as uint16);
2. whole numbers spanning at most 65536 values are stored unsigned with RescaleIntercept = their minimum;
3. anything else (fractions, wider ranges) is quantised: stored = round((value - min) / slope) with
   slope = (max - min) / 65534 and intercept = min. This is lossy: each value may move by up to slope / 2.

NaN or infinite values are refused: DICOM pixel data cannot hold them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from pydicom.valuerep import DSfloat

from medai.errors import MedAIError

_UINT16_LEVELS = 65535
#: Quantisation steps over the range: one short of 65535 so that rounding the slope to a decimal string can
#: never push the maximum past the largest stored value.
_STEPS = 65534


@dataclass(frozen=True)
class Encoded:
    """Stored pixel values and the rescale that turns them back into the volume's values."""

    stored: np.ndarray  #: int16 or uint16, same shape as the input
    slope: DSfloat
    intercept: DSfloat

    @property
    def signed(self) -> bool:
        return self.stored.dtype == np.int16


def encode_for_dicom(array: np.ndarray, where: Optional[Path] = None) -> Encoded:
    """Encode ``array`` by the module's rule; slope and intercept are the decimal strings that will be written.

    Errors name ``where`` (the destination).
    """
    values = np.asarray(array)
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if values.dtype.kind not in "iuf":
        raise MedAIError(f"the volume holds {values.dtype} voxels; DICOM pixel data holds real numbers only", where)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise MedAIError("the volume holds NaN or infinite values, which DICOM pixel data cannot store", where)
    if values.size == 0:
        raise MedAIError("the volume is empty", where)
    low, high = values.min(), values.max()
    whole = values.dtype.kind in "iu" or bool(np.all(np.mod(values, 1) == 0))
    if whole:
        low, high = int(low), int(high)
        # signed sources prefer signed storage, so that int16 data reads back as int16
        for dtype in (np.int16, np.uint16) if values.dtype.kind in "if" else (np.uint16, np.int16):
            if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
                return Encoded(values.astype(dtype), DSfloat(1), DSfloat(0))
        if high - low <= _UINT16_LEVELS:
            return Encoded((values.astype(np.int64) - low).astype(np.uint16), DSfloat(1), DSfloat(low))
    intercept = DSfloat(float(low), auto_format=True)
    slope = DSfloat(max(float(high) - float(intercept), 1e-12) / _STEPS, auto_format=True)
    stored = np.clip(np.rint((values.astype(np.float64) - float(intercept)) / float(slope)), 0, _UINT16_LEVELS)
    return Encoded(stored.astype(np.uint16), slope, intercept)
