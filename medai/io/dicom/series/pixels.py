"""DICOM pixel data: reading it whole (a truncated file is refused, naming it) and applying the rescale.

Rescale rule: ``value = stored * RescaleSlope + RescaleIntercept`` per plane. When every slope and intercept is a
whole number the result stays an integer array -- the stored dtype if the values fit it, else int16, else
int32 -- so e.g. unsigned CT with intercept -1024 becomes int16 Hounsfield units exactly. Otherwise the result
is float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medai.errors import MedAIError
from medai.io.dicom.series.planes import Plane
from medai.io.dicom.series.scan import first_line


def read_frames(path: Path) -> np.ndarray:
    """All frames of one DICOM file as stored (no rescale), shape (frames, rows, columns)."""
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as error:  # pydicom raises many exception types on damaged files
        raise MedAIError(f"is not a readable DICOM file ({first_line(error)})", path) from None
    if "PixelData" not in ds:
        raise MedAIError("has no pixel data (the file may be truncated)", path)
    _fill_transfer_syntax(ds)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if not ds.file_meta.TransferSyntaxUID.is_encapsulated:
        expected = (int(ds.Rows) * int(ds.Columns) * frames * int(ds.BitsAllocated) + 7) // 8
        if len(ds.PixelData) < expected:
            raise MedAIError(f"is truncated: its pixel data holds {len(ds.PixelData)} of {expected} bytes", path)
    try:
        array = ds.pixel_array
    except Exception as error:  # decoders raise many exception types (missing plugin, corrupt stream)
        raise MedAIError(f"pixel data cannot be decoded ({first_line(error)})", path) from None
    return array.reshape(frames, int(ds.Rows), int(ds.Columns))


def rescaled(stored: np.ndarray, planes: list[Plane]) -> np.ndarray:
    """``stored`` (K, rows, columns) with each plane's slope and intercept applied; dtype by the module's rule."""
    slopes = np.array([p.slope for p in planes])
    intercepts = np.array([p.intercept for p in planes])
    if np.all(slopes == 1) and np.all(intercepts == 0):
        return stored
    whole = stored.dtype.kind in "iu" and np.all(np.mod(slopes, 1) == 0) and np.all(np.mod(intercepts, 1) == 0)
    dtype = _integer_dtype(stored, slopes, intercepts) if whole else np.dtype(np.float32)
    out = np.empty(stored.shape, dtype)
    for k, (slope, intercept) in enumerate(zip(slopes, intercepts)):  # plane by plane: no int64 copy of the volume
        out[k] = stored[k].astype(np.int64) * int(slope) + int(intercept) if whole else stored[k] * slope + intercept
    return out


def _integer_dtype(stored: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.dtype:
    """The stored dtype if the rescaled values fit it, else int16, int32 or int64."""
    low, high = stored.min(axis=(1, 2)).astype(np.int64), stored.max(axis=(1, 2)).astype(np.int64)
    ends = np.concatenate([low * slopes.astype(np.int64), high * slopes.astype(np.int64)]) + np.tile(intercepts.astype(np.int64), 2)
    for dtype in (stored.dtype, np.dtype(np.int16), np.dtype(np.int32)):
        if np.iinfo(dtype).min <= ends.min() and ends.max() <= np.iinfo(dtype).max:
            return dtype
    return np.dtype(np.int64)


def _fill_transfer_syntax(ds) -> None:
    """Files without a meta header (no preamble) get the transfer syntax pydicom detected while reading them."""
    if "TransferSyntaxUID" in ds.file_meta:
        return
    implicit, little = ds.original_encoding
    ds.file_meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
