"""Writing a label map as a DICOM RT Structure Set (RTSTRUCT) for the series it was made on (pydicom only).

One ROI per non-empty label (empty ones are skipped with a logged warning), numbered with the label value, named
after the label, with its colour (ROIDisplayColor), an RTROIInterpretedType (ORGAN unless told otherwise), the
terminology's type code as RTROIIdentificationCodeSequence and ROIGenerationAlgorithm AUTOMATIC. On every source
slice where a label has voxels, its contours follow :mod:`medai.io.dicom.rtstruct.contours`: CLOSED_PLANAR polygons along
the pixel edges of the label's pixels, outer boundaries and holes as separate contours to be filled by the
even-odd rule, so that filling them at voxel centres gives back exactly the label's voxels (single voxels
included). Corner (i, j) of slice k goes to LPS as origin + i*sI*dI + j*sJ*dJ + k*sK*dK with the series' own
geometry, so anisotropic pixels, non-square images and oblique series are right. Each contour references its
slice's image (ContourImageSequence); ReferencedFrameOfReferenceSequence references the frame of reference, the
study, the series and every source image. Patient and study are copied from the source images; the structure
set is marked UNAPPROVED (a clinician reviews automatic contours). Implicit VR little endian is used because
contours of large structures exceed the 64 KB an explicit-VR DS value can hold.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ImplicitVRLittleEndian, generate_uid

from medai.errors import MedAIError, PathLike
from medai.io.atomic import write_atomically
from medai.io.dicom.derived import (SourceSeries, copy_patient_study, require_same_grid, rgb255, segments_to_write,
                                    source_series)
from medai.io.dicom.rtstruct.contours import mask_polygons
from medai.labels import SegmentLabel
from medai.volume import Volume

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
#: The SOP class conventionally referenced for the study in RTReferencedStudySequence (Study Component Management).
STUDY_REFERENCE_CLASS = "1.2.840.10008.3.1.2.3.1"
#: Defined terms of RTROIInterpretedType (PS3.3 C.8.8.8); "" (unknown) is allowed too.
INTERPRETED_TYPES = ("EXTERNAL", "PTV", "CTV", "GTV", "TREATED_VOLUME", "IRRAD_VOLUME", "BOLUS", "AVOIDANCE", "ORGAN",
                     "MARKER", "REGISTRATION", "ISOCENTER", "CONTRAST_AGENT", "CAVITY", "BRACHY_CHANNEL",
                     "BRACHY_ACCESSORY", "BRACHY_SRC_APP", "BRACHY_CHNL_SHLD", "SUPPORT", "FIXATION", "DOSE_REGION",
                     "CONTROL", "DOSE_MEASUREMENT", "")
CONTOUR_DATA = Tag(0x3006, 0x0050)


def write_rtstruct(
    label_map: Volume,
    labels: Sequence[SegmentLabel],
    source: Volume,
    path: PathLike,
    *,
    algorithm_name: str = "MedAI",
    algorithm_version: str = "",
    structure_set_label: str = "MedAI",
    series_description: str = "MedAI structures",
    series_number: int = 301,
    manufacturer: str = "MedAI",
    interpreted_types: Union[str, Mapping[int, str]] = "ORGAN",
) -> Path:
    """Write ``label_map`` (on ``source``'s grid) as an RTSTRUCT for the DICOM series ``source`` was read from.

    ``interpreted_types`` is one RTROIInterpretedType for every ROI, or one per label value (labels missing
    from the mapping use ``label.extra["rt_roi_interpreted_type"]``, else ORGAN). Returns ``path``.
    """
    target = Path(path)
    series = source_series(source, target)
    require_same_grid(label_map, source, target)
    segments = segments_to_write(label_map, labels, target)
    types = {label.value: _interpreted_type(label, interpreted_types, target) for label in segments}
    ds = _structure_set(series, structure_set_label, series_description, series_number, manufacturer, algorithm_name,
                        algorithm_version)
    array = np.asarray(label_map.array)
    for label in segments:
        ds.StructureSetROISequence.append(_roi(label, series, algorithm_name, algorithm_version))
        ds.ROIContourSequence.append(_roi_contours(array == label.value, label, series))
        ds.RTROIObservationsSequence.append(_observation(label, types[label.value]))
    return write_atomically(target, lambda partial: ds.save_as(partial, enforce_file_format=True))


def _interpreted_type(label: SegmentLabel, types: Union[str, Mapping[int, str]], where: Path) -> str:
    if isinstance(types, str):
        value = label.extra.get("rt_roi_interpreted_type", types)
    else:
        value = types.get(label.value, label.extra.get("rt_roi_interpreted_type", "ORGAN"))
    if value not in INTERPRETED_TYPES:
        raise MedAIError(f"{value!r} is not an RT ROI interpreted type (one of {', '.join(t for t in INTERPRETED_TYPES if t)})",
                         where)
    return value


def _structure_set(series: SourceSeries, label: str, description: str, number: int, manufacturer: str,
                   algorithm_name: str, algorithm_version: str) -> FileDataset:
    """Everything but the ROIs: file meta, patient, study, series, equipment, structure set and approval."""
    import medai

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDAI"
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    now = datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = RT_STRUCTURE_SET_STORAGE, sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    copy_patient_study(series.first_dataset(), ds)
    ds.StudyInstanceUID = series.study_instance_uid
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), number
    ds.SeriesDescription, ds.SeriesDate, ds.SeriesTime, ds.OperatorsName = description, date, time, ""
    ds.FrameOfReferenceUID = series.frame_of_reference_uid  # not in the IOD, but PACS and viewers group by it
    ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions = manufacturer, "MedAI", medai.__version__
    ds.InstanceNumber = 1
    ds.StructureSetLabel = label[:16]
    ds.StructureSetName = label[:64]
    ds.StructureSetDescription = f"{algorithm_name} {algorithm_version}".strip()
    ds.StructureSetDate, ds.StructureSetTime = date, time
    ds.ReferencedFrameOfReferenceSequence = [_referenced_frame(series)]
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    ds.ApprovalStatus = "UNAPPROVED"
    return ds


def _image_reference(series: SourceSeries, k: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = series.sop_class_uid
    item.ReferencedSOPInstanceUID = series.sop_instance_uids[k]
    if series.frames[k] is not None:
        item.ReferencedFrameNumber = series.frames[k]
    return item


def _referenced_frame(series: SourceSeries) -> Dataset:
    referenced_series = Dataset()
    referenced_series.SeriesInstanceUID = series.series_instance_uid
    referenced_series.ContourImageSequence = [_image_reference(series, k) for k in range(len(series.sop_instance_uids))]
    study = Dataset()
    study.ReferencedSOPClassUID = STUDY_REFERENCE_CLASS
    study.ReferencedSOPInstanceUID = series.study_instance_uid
    study.RTReferencedSeriesSequence = [referenced_series]
    frame = Dataset()
    frame.FrameOfReferenceUID = series.frame_of_reference_uid
    frame.RTReferencedStudySequence = [study]
    return frame


def _roi(label: SegmentLabel, series: SourceSeries, algorithm_name: str, algorithm_version: str) -> Dataset:
    roi = Dataset()
    roi.ROINumber = label.value
    roi.ReferencedFrameOfReferenceUID = series.frame_of_reference_uid
    roi.ROIName = label.name[:64]
    roi.ROIGenerationAlgorithm = "AUTOMATIC"
    roi.ROIGenerationDescription = f"{algorithm_name} {algorithm_version}".strip()[:64]
    return roi


def _roi_contours(mask: np.ndarray, label: SegmentLabel, series: SourceSeries) -> Dataset:
    volume = series.volume
    item = Dataset()
    item.ROIDisplayColor = rgb255(label.color)
    item.ReferencedROINumber = label.value
    contours = []
    for k in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)).tolist():
        for polygon in mask_polygons(mask[k]):
            points = volume.lps_points(np.column_stack([polygon, np.full(len(polygon), float(k))]))
            contour = Dataset()
            contour.ContourImageSequence = [_image_reference(series, k)]
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourNumber = len(contours) + 1
            contour[CONTOUR_DATA] = _decimal_strings(points.ravel())
            contours.append(contour)
    item.ContourSequence = contours
    return item


def _decimal_strings(values: np.ndarray) -> RawDataElement:
    """ContourData as DS text, built directly (10 significant digits, at most 16 characters each)."""
    text = "\\".join(f"{v:.10g}" for v in values.tolist()).encode("ascii")
    if len(text) % 2:
        text += b" "
    return RawDataElement(CONTOUR_DATA, "DS", len(text), text, 0, True, True)


def _observation(label: SegmentLabel, interpreted_type: str) -> Dataset:
    observation = Dataset()
    observation.ObservationNumber = label.value
    observation.ReferencedROINumber = label.value
    observation.RTROIInterpretedType = interpreted_type
    observation.ROIInterpreter = ""
    if label.terminology is not None:
        code, value = Dataset(), label.terminology.type.value
        if len(value) > 16:
            code.LongCodeValue = value
        else:
            code.CodeValue = value
        code.CodingSchemeDesignator = label.terminology.type.scheme
        code.CodeMeaning = label.terminology.type.meaning
        observation.RTROIIdentificationCodeSequence = [code]
    return observation
