"""What DICOM objects derived from an image series (SEG, RTSTRUCT) share: the source series and the segments.

A derived object is written for, and read onto, a *source series*: a :class:`Volume` read by
:func:`medai.io.dicom.series.read.read_dicom`, whose ``metadata["dicom"]`` lists the SOP instance UID, file and frame of
every K slice. Its voxels are the grid that label maps live on: writers refuse label maps on any other grid, and
readers return label maps on exactly that grid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pydicom

from medai.errors import MedAIError, PathLike
from medai.labels import Code, SegmentLabel
from medai.volume import Volume

log = logging.getLogger(__name__)

#: Patient and General Study attributes that derived objects copy from the source images (those of type 2 are
#: written empty when the source lacks them).
PATIENT_STUDY_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDsSequence",
    "PatientAge", "PatientSize", "PatientWeight", "PatientIdentityRemoved", "DeidentificationMethod",
    "DeidentificationMethodCodeSequence", "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName",
    "StudyID", "AccessionNumber", "StudyDescription",
)
TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                       "ReferringPhysicianName", "StudyID", "AccessionNumber")

OVERLAP_MODES = ("error", "later")


@dataclass(frozen=True)
class SourceSeries:
    """The DICOM images behind a volume, in K order."""

    volume: Volume
    sop_instance_uids: list[str]
    files: list[Path]
    frames: list[Optional[int]]  #: 1-based frame number in a multi-frame file, else None
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str

    def first_dataset(self) -> pydicom.Dataset:
        """The header of the first source file (patient and study attributes)."""
        return pydicom.dcmread(self.files[0], stop_before_pixels=True)

    def slice_index(self) -> dict[tuple[str, Optional[int]], int]:
        """K of each (SOPInstanceUID, frame number or None)."""
        return {(uid, frame): k for k, (uid, frame) in enumerate(zip(self.sop_instance_uids, self.frames))}


def source_series(source: Volume, where: PathLike) -> SourceSeries:
    """The source images of ``source``; a :class:`MedAIError` (about ``where``) when it was not read from DICOM."""
    info = source.metadata.get("dicom")
    count = source.array.shape[0]
    if not info or len(info.get("SOPInstanceUIDs") or []) != count or len(info.get("files") or []) != count:
        raise MedAIError("the image was not read from a DICOM series (its DICOM UIDs are unknown); DICOM SEG and "
                         "RTSTRUCT belong to a DICOM series, read with read_dicom", where)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "SOPClassUID"):
        if not info.get(keyword):
            raise MedAIError(f"the source DICOM series has no {keyword}, which DICOM SEG and RTSTRUCT must reference",
                             where)
    frames = list(info.get("frames") or [None] * count)
    return SourceSeries(source, list(info["SOPInstanceUIDs"]), [Path(f) for f in info["files"]], frames,
                        info["SOPClassUID"], info["StudyInstanceUID"], info["SeriesInstanceUID"],
                        info["FrameOfReferenceUID"])


def series_volume(series: Union[Volume, PathLike]) -> Volume:
    """A series given as a volume read from DICOM, or as its folder (read here)."""
    if isinstance(series, Volume):
        return series
    from medai.io.dicom.series.read import read_dicom

    return read_dicom(series)


def require_same_grid(label_map: Volume, source: Volume, where: PathLike) -> None:
    if not label_map.same_grid(source):
        raise MedAIError(
            f"the label map (shape {label_map.array.shape}) is not on the source series' grid (shape {source.array.shape}); "
            "resample it onto the series first (medai.resample.resample_to_grid with nearest interpolation)", where)


def segments_to_write(label_map: Volume, labels: Sequence[SegmentLabel], where: PathLike) -> list[SegmentLabel]:
    """The labels that have voxels, in the order given; empty ones are skipped with a logged warning.

    Refused: label values used twice, values in the map that no label describes, and a map with no voxels at all.
    """
    array = np.asarray(label_map.array)
    if not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.bool_):
        if not np.all(np.mod(array, 1) == 0):
            raise MedAIError(f"the label map holds non-integer values ({array.dtype}); it must hold label values", where)
    values = [label.value for label in labels]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise MedAIError(f"several labels share the value(s) {duplicates}", where)
    present = set(np.unique(array).astype(int).tolist()) - {0}
    unknown = sorted(present - set(values))
    if unknown:
        raise MedAIError(f"the label map holds value(s) {unknown} that no label describes", where)
    kept = [label for label in labels if label.value in present]
    for label in labels:
        if label.value not in present:
            log.warning("%s: segment %d %r is empty and is not written", where, label.value, label.name)
    if not kept:
        raise MedAIError("every segment is empty: there is nothing to write", where)
    return kept


def label_dtype(max_value: int) -> np.dtype:
    """The smallest unsigned type holding label values up to ``max_value``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def place_segment(out: np.ndarray, k: int, mask: np.ndarray, value: int, names: dict[int, str], overlap: str,
                  where: PathLike) -> None:
    """Set ``value`` where ``mask`` is true on slice ``k``; another segment already there is an error unless
    ``overlap == "later"`` (then this one wins)."""
    if overlap == "error":
        taken = out[k][mask]
        clash = taken[(taken != 0) & (taken != value)]
        if clash.size:
            other = int(clash[0])
            raise MedAIError(
                f"segments {names.get(other, other)!r} and {names.get(value, value)!r} overlap ({clash.size} voxels on "
                f"slice {k}); a label map holds one segment per voxel (pass overlap='later' to let the later one win)",
                where)
    out[k][mask] = value


def read_dicom_object(path: Path, sop_classes: dict[str, str], what: str) -> pydicom.Dataset:
    """The DICOM file at ``path``, which must be of one of ``sop_classes`` (UID: name); ``what`` names them for errors.

    Read with ``force``: some files (pydicom's own rtstruct.dcm) lack the DICM preamble.
    """
    if not path.is_file():
        raise MedAIError("no such file", path)
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as error:  # pydicom raises many types on foreign files
        raise MedAIError(f"is not a readable DICOM file ({error})", path) from None
    uid = str(ds.get("SOPClassUID", ""))
    if uid not in sop_classes:
        name = pydicom.uid.UID(uid).name if uid else "unknown"
        raise MedAIError(f"is a DICOM {name} object, not {what}", path)
    return ds


def rgb255(color: Sequence[float]) -> list[int]:
    """An RGB colour in 0..1 as integers 0..255."""
    return [int(round(min(max(float(c), 0.0), 1.0) * 255)) for c in color]


#: The colour of a segment whose file gives none.
DEFAULT_COLOR = SegmentLabel.__dataclass_fields__["color"].default


def check_overlap_mode(overlap: str) -> None:
    if overlap not in OVERLAP_MODES:
        raise ValueError(f"overlap must be one of {OVERLAP_MODES}, not {overlap!r}")


def code_of(item) -> Optional[Code]:
    """A :class:`Code` from a DICOM code sequence item (CodeValue, LongCodeValue or URNCodeValue)."""
    if item is None:
        return None
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
    if not value:
        return None
    return Code(str(value), str(item.get("CodingSchemeDesignator", "")), str(item.get("CodeMeaning", "")))


def first_item(ds, keyword: str):
    """The first item of sequence ``keyword`` in ``ds``, or None."""
    sequence = ds.get(keyword) if ds is not None else None
    return sequence[0] if sequence else None


def copy_patient_study(source: pydicom.Dataset, target: pydicom.Dataset) -> None:
    """Copy the patient and study of ``source`` to ``target`` (type 2 attributes empty when missing)."""
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword in source:
            target[keyword] = source[keyword]
        elif keyword in TYPE2_PATIENT_STUDY:
            setattr(target, keyword, "")
