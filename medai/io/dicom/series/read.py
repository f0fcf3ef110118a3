"""Reading a DICOM series folder, or one DICOM file, into a :class:`Volume`.

Geometry (see :mod:`medai.io.dicom.series.stack`): I along the row cosine, J along the column cosine, K along the
slice normal, slices sorted by position along it, so the direction is right-handed and the origin is the first
pixel of the lowest slice. A single-frame image without ImageOrientationPatient/ImagePositionPatient (a
radiograph) gets the identity direction and a zero origin; its pixel size is PixelSpacing, else
ImagerPixelSpacing (at the detector, not corrected for magnification), else 1 mm. Values are rescaled as
:mod:`medai.io.dicom.series.pixels` describes; MONOCHROME1 images keep their stored values (the photometric
interpretation is in the metadata).

``volume.metadata["dicom"]`` holds the UIDs later DICOM export needs: StudyInstanceUID, SeriesInstanceUID,
FrameOfReferenceUID, Modality, SOPClassUID, SeriesDescription, PatientID, PhotometricInterpretation, and per
K slice: ``SOPInstanceUIDs``, ``files`` and ``frames`` (1-based frame number in a multi-frame file, else None).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.io.dicom.series.pixels import read_frames, rescaled
from medai.io.dicom.series.planes import Plane, planes_of
from medai.io.dicom.series.scan import DicomHeader, choose_series, image_headers_in, read_header
from medai.io.dicom.series.stack import Stack, stack_planes
from medai.volume import Volume

#: Series-level attributes copied into ``metadata["dicom"]`` from the first file.
SERIES_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality", "SOPClassUID",
                   "SeriesDescription", "PatientID", "PhotometricInterpretation")


def read_dicom(path: PathLike, series_uid: Optional[str] = None) -> Volume:
    """Read a DICOM series folder (searched recursively) or a single DICOM file into a Volume.

    A folder with several series needs ``series_uid``. Missing, duplicate or unevenly spaced slices, mixed
    orientations or sizes and unreadable or truncated files are refused with a :class:`MedAIError` naming the
    folder or the file.
    """
    p = Path(path)
    if p.is_dir():
        headers = choose_series(image_headers_in(p), p, series_uid)
    elif p.is_file():
        header = read_header(p, required=True)
        if not header.is_image:
            raise MedAIError(f"is a DICOM {header.sop_class} object, not an image", p)
        headers = [header]
    else:
        raise MedAIError("no such file or folder", p)
    planes = [plane for header in headers for plane in planes_of(header.dataset, header.path)]
    stack = stack_planes(planes, p)
    volume = Volume(_voxels(stack.planes), stack.spacing, stack.origin, stack.direction)
    volume.metadata.update(source=str(p), dicom=_metadata(headers[0], stack))
    return volume


def _voxels(planes: list[Plane]) -> np.ndarray:
    """The K,J,I array of sorted planes, each file read once, rescaled."""
    frames_of: dict[Path, np.ndarray] = {}
    for plane in planes:
        if plane.file not in frames_of:
            frames_of[plane.file] = read_frames(plane.file)
    stored = np.stack([frames_of[plane.file][plane.frame or 0] for plane in planes])  # mixed dtypes widen
    frames_of.clear()
    return rescaled(stored, planes)


def _metadata(first: DicomHeader, stack: Stack) -> dict:
    ds = first.dataset
    info = {keyword: str(ds.get(keyword, "")) for keyword in SERIES_KEYWORDS}
    info["SOPInstanceUIDs"] = [p.sop_instance_uid for p in stack.planes]
    info["files"] = [str(p.file) for p in stack.planes]
    info["frames"] = [None if p.frame is None else p.frame + 1 for p in stack.planes]
    return info
