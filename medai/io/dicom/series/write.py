"""Writing a :class:`Volume` as a DICOM CT or MR image series: one single-frame file per K slice.

Each file carries full patient, study, series, frame-of-reference and equipment attributes, the image plane
(ImagePositionPatient of the slice's first voxel, ImageOrientationPatient = the I and J directions,
PixelSpacing = [J spacing, I spacing], SliceThickness and SpacingBetweenSlices = the K spacing), explicit VR
little endian, 16-bit pixel data encoded as :mod:`medai.io.dicom.series.encode` describes (exact for whole numbers that
fit 16 bits, quantised with a RescaleSlope otherwise) and new UIDs from ``pydicom.uid.generate_uid``.
Decimal strings use all 16 characters DICOM allows, so positions keep about 1e-10 mm.

A left-handed volume (det(direction) < 0) is written as it is: its slices then step against the normal
row x column, which DICOM allows; readers that sort along the normal reverse K.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import pydicom
from pydicom.datadict import keyword_dict
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pydicom.valuerep import DSfloat

from medai.errors import MedAIError, PathLike
from medai.io.atomic import publish_folder, staging_folder
from medai.io.dicom.series.encode import Encoded, encode_for_dicom
from medai.volume import Volume

SOP_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage}
DEFAULT_PATIENT = {"PatientName": "Anonymous^MedAI", "PatientID": "MEDAI-0001", "PatientBirthDate": "", "PatientSex": ""}


def write_dicom_series(
    volume: Volume,
    folder: PathLike,
    modality: str = "CT",
    patient: Optional[Mapping[str, str]] = None,
    series_description: str = "MedAI",
    series_number: int = 1,
    study_uid: Optional[str] = None,
    frame_of_reference_uid: Optional[str] = None,
    shuffle_names: bool = False,
    descending_instance_numbers: bool = False,
    seed: int = 0,
) -> list[Path]:
    """Write ``volume`` as a new DICOM series in ``folder``; returns the files in K order.

    ``folder`` must not exist or be empty, and its parent must exist; the series appears there only once every
    file is written. ``patient`` holds Patient* attributes by keyword (defaults: :data:`DEFAULT_PATIENT`).
    ``study_uid`` and ``frame_of_reference_uid`` place the series in an existing study and patient frame
    (new UIDs otherwise). ``shuffle_names`` gives files names unrelated to slice order and
    ``descending_instance_numbers`` numbers slices from the last; with ``seed`` these make the awkward but valid
    series that readers must sort by position.
    """
    target = Path(folder)
    if modality not in SOP_CLASSES:
        raise ValueError(f"modality must be one of {sorted(SOP_CLASSES)}, not {modality!r}")
    patient = {**DEFAULT_PATIENT, **(patient or {})}
    unknown = [k for k in patient if not k.startswith("Patient") or k not in keyword_dict]
    if unknown:
        raise ValueError(f"patient takes Patient* DICOM keywords; got {unknown}")
    if not target.parent.is_dir():
        raise MedAIError("the folder to write into does not exist", target.parent)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise MedAIError("exists and is not an empty folder; DICOM series are written into a new folder", target)
    _require_orthonormal(volume.direction, target)
    encoded = encode_for_dicom(volume.array, target)

    count = volume.array.shape[0]
    order = np.random.default_rng(seed).permutation(count) if shuffle_names else np.arange(count)
    names = [f"IM{order[k] + 1:05d}.dcm" for k in range(count)]
    base = _series_dataset(volume, encoded, modality, patient, series_description, series_number,
                           study_uid or generate_uid(), frame_of_reference_uid or generate_uid())
    with staging_folder(target.parent) as staged:
        for k in range(count):
            number = count - k if descending_instance_numbers else k + 1
            _write_slice(base, volume, encoded, k, number, staged / names[k])
        publish_folder(staged, target)
    return [target / name for name in names]


def _series_dataset(volume: Volume, encoded: Encoded, modality: str, patient: Mapping[str, str],
                    description: str, number: int, study_uid: str, frame_uid: str) -> FileDataset:
    """Everything the slices share; :func:`_write_slice` adds the per-slice attributes."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASSES[modality]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDAI"
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    now = datetime.now()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SOP_CLASSES[modality]
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if modality == "CT" else "OTHER"]
    for keyword, value in patient.items():
        setattr(ds, keyword, value)
    ds.StudyInstanceUID, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = study_uid, "1", "", ""
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = modality, generate_uid(), number
    ds.SeriesDescription, ds.PatientPosition = description, ""
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
    ds.Manufacturer, ds.ManufacturerModelName = "MedAI", "medai.io.dicom.series.write"
    _image_plane(ds, volume)
    _image_pixel(ds, volume, encoded, modality)
    if modality == "CT":
        ds.KVP, ds.AcquisitionNumber = "", ""
    else:
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions, ds.MRAcquisitionType = "RM", "NONE", "", ""
        ds.EchoTime = ds.RepetitionTime = ds.EchoTrainLength = ""
    return ds


def _image_plane(ds: FileDataset, volume: Volume) -> None:
    s_i, s_j, s_k = volume.spacing
    ds.ImageOrientationPatient = [_ds(v) for v in np.concatenate([volume.direction[:, 0], volume.direction[:, 1]])]
    ds.PixelSpacing = [_ds(s_j), _ds(s_i)]
    ds.SliceThickness = ds.SpacingBetweenSlices = _ds(s_k)


def _image_pixel(ds: FileDataset, volume: Volume, encoded: Encoded, modality: str) -> None:
    count, rows, columns = volume.array.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if encoded.signed else 0
    if modality == "CT" or not (encoded.slope == 1 and encoded.intercept == 0):
        ds.RescaleIntercept, ds.RescaleSlope = encoded.intercept, encoded.slope
    low, high = float(volume.array.min()), float(volume.array.max())
    ds.WindowCenter, ds.WindowWidth = _ds((low + high) / 2), _ds(max(high - low, 1.0))


def _write_slice(ds: FileDataset, volume: Volume, encoded: Encoded, k: int, number: int, path: Path) -> None:
    """Set slice ``k``'s own attributes on the shared dataset and save it to ``path``."""
    position = volume.lps_points([[0, 0, k]])[0]
    normal = np.cross(volume.direction[:, 0], volume.direction[:, 1])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.SliceLocation = _ds(position @ normal)
    ds.PixelData = encoded.stored[k].astype(encoded.stored.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OW"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def _require_orthonormal(direction: np.ndarray, where: Path) -> None:
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
        raise MedAIError("the volume's direction matrix is not orthonormal (a sheared grid); DICOM cannot store it", where)


def _ds(value: float) -> DSfloat:
    """A decimal string with as many digits as DICOM's 16 characters allow."""
    return DSfloat(float(value), auto_format=True)
