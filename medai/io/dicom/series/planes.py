"""The image planes a DICOM file holds: one for a single-frame image, one per frame for enhanced multi-frame.

A :class:`Plane` carries what stacking and rescaling need, taken from the header alone (pixel data is read
later, only for the series that is loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from pydicom.multival import MultiValue

from medai.errors import MedAIError


@dataclass(frozen=True)
class Plane:
    """One 2D image of a file: where it is, its pixel grid and its rescale."""

    file: Path
    frame: Optional[int]  #: 0-based frame in a multi-frame file; None for a single-frame file
    sop_instance_uid: str
    rows: int
    columns: int
    spacing_ij: tuple[float, float]  #: (along I = between columns, along J = between rows), mm
    position: Optional[np.ndarray]  #: ImagePositionPatient (LPS mm) of the first pixel, if given
    row_cosine: Optional[np.ndarray]  #: LPS direction of increasing column index (I), if given
    column_cosine: Optional[np.ndarray]  #: LPS direction of increasing row index (J), if given
    slope: float
    intercept: float
    thickness: Optional[float]  #: SpacingBetweenSlices, else SliceThickness: the K spacing of a lone plane

    def label(self) -> str:
        """The file name, with the frame number (1-based) for a multi-frame file."""
        return self.file.name if self.frame is None else f"{self.file.name} frame {self.frame + 1}"


def planes_of(ds, path: Path) -> list[Plane]:
    """The planes of a DICOM image header (read with or without pixel data)."""
    for keyword in ("Rows", "Columns"):
        if keyword not in ds:
            raise MedAIError(f"is incomplete: it has no {keyword} (the file may be truncated)", path)
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise MedAIError(f"is a colour image ({ds.get('PhotometricInterpretation', '?')}); MedAI reads grayscale images only", path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced_planes(ds, path, frames)
    if frames > 1:
        raise MedAIError(f"holds {frames} frames without per-frame positions; such multi-frame files are not supported", path)
    return [_plane(ds, path, None, ds, ds, ds, ds)]


def _enhanced_planes(ds, path: Path, frames: int) -> list[Plane]:
    """Planes of an enhanced multi-frame image: functional groups per frame, falling back to the shared ones."""
    per_frame = ds.PerFrameFunctionalGroupsSequence
    if len(per_frame) != frames:
        raise MedAIError(f"declares {frames} frames but describes {len(per_frame)}", path)
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]

    def group(frame_groups, keyword: str):
        for source in (frame_groups, shared):
            if source is not None and source.get(keyword):  # present and not an empty sequence
                return source[keyword][0]
        return None

    planes = []
    for index, frame_groups in enumerate(per_frame):
        planes.append(_plane(
            ds, path, index,
            spacing_from=group(frame_groups, "PixelMeasuresSequence"),
            position_from=group(frame_groups, "PlanePositionSequence"),
            orientation_from=group(frame_groups, "PlaneOrientationSequence"),
            rescale_from=group(frame_groups, "PixelValueTransformationSequence"),
        ))
    return planes


def _plane(ds, path: Path, frame: Optional[int], spacing_from, position_from, orientation_from, rescale_from) -> Plane:
    orientation = _floats(orientation_from, "ImageOrientationPatient", 6, path)
    spacing = _pixel_spacing(spacing_from, path)
    return Plane(
        file=path,
        frame=frame,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        spacing_ij=(spacing[1], spacing[0]),
        position=_floats(position_from, "ImagePositionPatient", 3, path),
        row_cosine=None if orientation is None else orientation[:3],
        column_cosine=None if orientation is None else orientation[3:],
        slope=float(_value(rescale_from, "RescaleSlope", 1.0)),
        intercept=float(_value(rescale_from, "RescaleIntercept", 0.0)),
        thickness=_value(spacing_from, "SpacingBetweenSlices", None) or _value(spacing_from, "SliceThickness", None),
    )


def _pixel_spacing(source, path: Path) -> tuple[float, float]:
    """(row spacing, column spacing) in mm: PixelSpacing, else ImagerPixelSpacing (X-ray detector), else 1 mm."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _floats(source, keyword, 2, path)
        if values is not None:
            if np.any(values <= 0):
                raise MedAIError(f"has a {keyword} that is not positive: {values.tolist()}", path)
            return float(values[0]), float(values[1])
    return 1.0, 1.0


def _value(source, keyword: str, default):
    value = None if source is None else source.get(keyword)
    return default if value is None or value == "" else float(value)


def _floats(source, keyword: str, count: int, path: Path) -> Optional[np.ndarray]:
    """A multi-valued numeric attribute as floats, None when absent or empty."""
    value = None if source is None else source.get(keyword)
    if value is None or value == "":
        return None
    try:
        values = np.array([float(v) for v in (value if isinstance(value, (MultiValue, list, tuple)) else [value])])
    except (TypeError, ValueError):
        raise MedAIError(f"has an unreadable {keyword}: {value!r}", path) from None
    if values.shape != (count,) or not np.all(np.isfinite(values)):
        raise MedAIError(f"has a {keyword} that is not {count} finite numbers: {value!r}", path)
    return values
