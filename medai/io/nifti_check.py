"""Refusing truncated NIfTI files, which SimpleITK reads without complaint (missing voxels come back as 0)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from medai.errors import MedAIError

_CHUNK = 1 << 24


def require_complete_nifti(path: Path) -> None:
    """Raise :class:`MedAIError` when a ``.nii``/``.nii.gz`` file ends before the voxel data its header declares.

    A ``.nii.gz`` file is decompressed once to count its bytes (and to check the gzip stream is whole). A file
    whose header is not a single-file NIfTI-1/-2 header is left for the image reader to report.
    """
    try:
        declared, size = _declared_and_actual_size(path)
    except gzip.BadGzipFile:
        raise MedAIError("is not a NIfTI file: its name ends in .gz but its content is not gzip-compressed", path) from None
    except (EOFError, zlib.error) as error:
        raise MedAIError(f"is truncated or damaged: its compressed data ends early or is corrupt ({error})", path) from None
    except OSError as error:
        raise MedAIError(f"cannot be read ({error.strerror or error})", path) from None
    if declared is not None and size < declared:
        raise MedAIError(f"is truncated: its header declares {declared} bytes of header and voxels, the file holds {size}", path)


def _declared_and_actual_size(path: Path) -> tuple[Optional[int], int]:
    """(size the header declares or None, bytes the file holds once decompressed)."""
    if not path.name.lower().endswith(".gz"):
        with open(path, "rb") as stream:
            return declared_nifti_size(stream.read(540)), path.stat().st_size
    with gzip.open(path, "rb") as stream:
        head = stream.read(540)
        declared = declared_nifti_size(head)
        size = len(head)
        while declared is not None and (chunk := stream.read(_CHUNK)):
            size += len(chunk)
    return declared, size


def declared_nifti_size(header: bytes) -> Optional[int]:
    """vox_offset + voxel bytes declared by a single-file NIfTI-1 (``n+1``) or NIfTI-2 (``n+2``) header, else None."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348 and header[344:347] == b"n+1":
            dims = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
            return _total(dims, bitpix, offset)
        if len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540 and header[4:7] == b"n+2":
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
            return _total(dims, bitpix, offset)
    return None


def _total(dims, bitpix: int, offset: int) -> Optional[int]:
    if not 1 <= dims[0] <= 7 or bitpix <= 0 or any(d < 0 for d in dims[1:dims[0] + 1]):
        return None
    voxels = 1
    for d in dims[1:dims[0] + 1]:
        voxels *= d
    return offset + (voxels * bitpix + 7) // 8


#: NIfTI datatype codes of floating-point voxels and their numpy types.
_FLOAT_TYPES = {16: "f4", 64: "f8"}


def nifti_nan_mask(path: Path) -> Optional[np.ndarray]:
    """Where a float NIfTI-1 file stores NaN voxels, as a flat boolean array in file order (None if no NaN).

    ITK's NIfTI reader returns NaN voxels as 0, which would hide them from the pipeline's input checks.
    File order (I fastest) equals the C order of a K,J,I array, so the mask reshapes onto the read array.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as stream:
        header = stream.read(348)
        for endian in "<>":
            if len(header) == 348 and struct.unpack(endian + "i", header[:4])[0] == 348 and header[344:347] == b"n+1":
                break
        else:
            return None
        datatype = struct.unpack(endian + "h", header[70:72])[0]
        if datatype not in _FLOAT_TYPES:
            return None
        offset = int(struct.unpack(endian + "f", header[108:112])[0])
        stream.read(offset - 348)
        voxels = np.frombuffer(stream.read(), dtype=endian + _FLOAT_TYPES[datatype])
    mask = np.isnan(voxels)
    return mask if mask.any() else None
