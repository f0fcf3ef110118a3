"""DICOM Segmentation (SEG) objects: a label map written for its source series, and read back onto a series grid.

Writing (:func:`write_dicom_seg`) uses highdicom. The label map must be on the source series' grid. highdicom
does not sort: its frame ``n`` of the mask derives from source image ``n``, so the source files are handed over in
the K order of ``source.metadata["dicom"]["files"]`` and the mask in the same order (a multi-frame source is
reordered to its frame order). Segments are numbered 1..N in the order of ``labels``, skipping empty ones (logged
as warnings); each has its name, the category and type codes of its terminology (Slicer's generic
"Tissue"/"Tissue" when it has none, also logged), type modifier and anatomic region, algorithm type AUTOMATIC
with the algorithm's name and version, and its colour as a recommended CIELab value. Frames are written only for
slices where a segment has voxels; each references its source image. Patient, study and frame of reference are
highdicom's copies from the source. The file appears at its path only once complete.

Reading (:func:`read_dicom_seg`) uses highdicom to decode and maps every frame to a slice of the series itself:
through the frame's ReferencedSOPInstanceUID (and frame number) in its DerivationImageSequence, else through its
PlanePositionSequence. A frame whose position or orientation disagrees with the series slice it references, a
SEG of another frame of reference or image size, or a frame on no slice of the series is refused: this reader
does not resample. Label values are the segment numbers (1..N: a map written with other values, or with empty
labels, comes back renumbered in the order of its labels). BINARY and LABELMAP SEGs are read exactly; a FRACTIONAL
voxel counts when its value is at least half the maximum. Overlapping segments are refused unless
``overlap="later"``, where the segment with the higher number wins.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pydicom

from medai.errors import MedAIError, PathLike
from medai.io.atomic import write_atomically
from medai.io.dicom.derived import (DEFAULT_COLOR, SourceSeries, check_overlap_mode, code_of, first_item, label_dtype,
                                    place_segment, read_dicom_object, require_same_grid, rgb255, segments_to_write,
                                    series_volume, source_series)
from medai.labels import Code, SegmentLabel, Terminology
from medai.volume import Volume

log = logging.getLogger(__name__)

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABEL_MAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
#: Slicer's default terminology for a segment that has none (SCT 85756007 "Tissue" as category and type).
TISSUE = Terminology(Code("85756007", "SCT", "Tissue"), Code("85756007", "SCT", "Tissue"))
SEGMENTATION_TYPES = ("BINARY", "LABELMAP")
#: Positions of SEG frames and series slices may differ this much (mm): 1 % of the smallest spacing, >= 0.01 mm.
POSITION_TOLERANCE = 0.01
ORIENTATION_TOLERANCE = 1e-4


def write_dicom_seg(
    label_map: Volume,
    labels: Sequence[SegmentLabel],
    source: Volume,
    path: PathLike,
    *,
    algorithm_name: str,
    algorithm_version: str,
    series_description: str = "MedAI segmentation",
    manufacturer: str = "MedAI",
    series_number: int = 300,
    segmentation_type: str = "BINARY",
) -> Path:
    """Write ``label_map`` (on ``source``'s grid) as a DICOM SEG for the series ``source`` was read from.

    ``labels`` name, colour and code the label values; values in the map without a label are refused, labels
    without voxels are skipped. ``segmentation_type`` is BINARY (the default, read by Slicer and every SEG
    reader) or LABELMAP (DICOM 2024 label-map SEG). Returns ``path``.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    import medai

    target = Path(path)
    if segmentation_type not in SEGMENTATION_TYPES:
        raise ValueError(f"segmentation_type must be one of {SEGMENTATION_TYPES}, not {segmentation_type!r}")
    series = source_series(source, target)
    require_same_grid(label_map, source, target)
    segments = segments_to_write(label_map, labels, target)
    datasets, order = _source_datasets(series, target)

    lookup = np.zeros(max(label.value for label in segments) + 1, np.uint16)
    for number, label in enumerate(segments, start=1):
        lookup[label.value] = number
    array = np.asarray(label_map.array).astype(np.int64, copy=False)  # values checked by segments_to_write
    numbers = lookup[array][order]  # segment numbers, in source frame order
    numbers = numbers.astype(np.uint8 if len(segments) < 256 else np.uint16)

    algorithm = hd.AlgorithmIdentificationSequence(name=algorithm_name, family=codes.cid7162.ArtificialIntelligence,
                                                   version=algorithm_version)
    descriptions = [_segment_description(number, label, algorithm, target) for number, label in enumerate(segments, 1)]
    try:
        seg = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=numbers,
            segmentation_type=segmentation_type,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=manufacturer,
            manufacturer_model_name="MedAI",
            software_versions=medai.__version__,
            device_serial_number="0",
            content_label="MEDAI",
            content_description=f"{algorithm_name} {algorithm_version}"[:64],
            series_description=series_description,
            omit_empty_frames=True,
        )
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise MedAIError(f"highdicom cannot make a SEG of this series: {error}", target) from None
    return write_atomically(target, lambda partial: seg.save_as(partial, enforce_file_format=True))


def _source_datasets(series: SourceSeries, where: Path) -> tuple[list[pydicom.Dataset], np.ndarray]:
    """The source headers as highdicom takes them, and the K order that puts the mask in their frame order."""
    count = len(series.files)
    if all(frame is None for frame in series.frames):
        return [pydicom.dcmread(f, stop_before_pixels=True) for f in series.files], np.arange(count)
    if len(set(series.files)) != 1 or sorted(series.frames) != list(range(1, count + 1)):
        raise MedAIError("the source series mixes multi-frame files or uses part of one; a SEG can be written only "
                         "for single-frame images or all frames of one multi-frame image", where)
    order = np.argsort(np.asarray(series.frames))  # frame f (1-based) is slice order[f - 1]
    return [pydicom.dcmread(series.files[0], stop_before_pixels=True)], order


def _segment_description(number: int, label: SegmentLabel, algorithm, where: Path):
    import highdicom as hd

    terminology = label.terminology
    if terminology is None:
        log.warning("%s: segment %d %r has no terminology; it is coded as Tissue/Tissue", where, label.value, label.name)
        terminology = TISSUE
    rgb = rgb255(label.color)
    region = terminology.region
    description = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label.name[:64],
        segmented_property_category=_coded(terminology.category),
        segmented_property_type=_coded(terminology.type),
        algorithm_type="AUTOMATIC",
        algorithm_identification=algorithm,
        anatomic_regions=[_coded(region)] if region else None,
        display_color=hd.color.CIELabColor.from_rgb(*rgb),
    )
    if terminology.type_modifier is not None:
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            _coded(terminology.type_modifier)]
    if region is not None and terminology.region_modifier is not None:
        description.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [_coded(terminology.region_modifier)]
    return description


def _coded(code: Code):
    from highdicom.sr.coding import CodedConcept

    return CodedConcept(code.value, code.scheme, code.meaning)


# --- reading ------------------------------------------------------------------------------------------------------

def read_dicom_seg_segments(path: PathLike) -> list[SegmentLabel]:
    """The segments a SEG describes (number, name, colour, terminology), without reading any image."""
    return _segment_labels(_read_seg(Path(path)))


def read_dicom_seg(path: PathLike, series: Union[Volume, PathLike], *, overlap: str = "error",
                   ) -> tuple[Volume, list[SegmentLabel]]:
    """The SEG at ``path`` as a label map on ``series``' grid (a volume read by read_dicom, or its folder).

    Label values are segment numbers; see the module notes for how frames find their slices.
    """
    check_overlap_mode(overlap)
    p = Path(path)
    seg = _read_seg(p)
    labels = _segment_labels(seg)
    volume = series_volume(series)
    source = source_series(volume, p)
    _require_same_frame(seg, source, p)
    k_of = _slice_of_frames(seg, source, p)
    kind = str(seg.SegmentationType).upper()
    numbers = _segment_numbers_of_frames(seg, kind, p)
    names = {label.value: label.name for label in labels}
    out = np.zeros(volume.array.shape, label_dtype(max(names, default=0)))
    for n in sorted(range(len(k_of)), key=lambda n: (numbers[n] or 0, n)):  # later (higher) segments last
        stored = np.asarray(seg.get_stored_frame(n + 1))
        if kind == "LABELMAP":
            for value in np.unique(stored[stored > 0]).tolist():
                place_segment(out, k_of[n], stored == value, int(value), names, overlap, p)
            continue
        if kind == "FRACTIONAL":
            mask = stored.astype(float) * 2 >= float(seg.MaximumFractionalValue)
            mask &= stored > 0
        else:
            mask = stored > 0
        place_segment(out, k_of[n], mask, numbers[n], names, overlap, p)
    return Volume(out, volume.spacing, volume.origin, volume.direction, {"source": str(p)}), labels


def _read_seg(path: Path):
    import highdicom as hd

    ds = read_dicom_object(path, {SEGMENTATION_STORAGE: "Segmentation Storage",
                                  LABEL_MAP_SEGMENTATION_STORAGE: "Label Map Segmentation Storage"},
                           "a Segmentation (SEG)")
    try:
        return hd.seg.Segmentation.from_dataset(ds, copy=False)
    except Exception as error:  # highdicom validates strictly and raises many types
        raise MedAIError(f"is not a valid DICOM SEG ({error})", path) from None


def _segment_labels(seg) -> list[SegmentLabel]:
    import highdicom as hd

    labels = []
    for item in seg.SegmentSequence:
        category = code_of(first_item(item, "SegmentedPropertyCategoryCodeSequence"))
        type_item = first_item(item, "SegmentedPropertyTypeCodeSequence")
        region_item = first_item(item, "AnatomicRegionSequence")
        terminology = None
        if category is not None and code_of(type_item) is not None:
            terminology = Terminology(category, code_of(type_item),
                                      code_of(first_item(type_item, "SegmentedPropertyTypeModifierCodeSequence")),
                                      code_of(region_item),
                                      code_of(first_item(region_item, "AnatomicRegionModifierSequence")))
        color = DEFAULT_COLOR
        if item.get("RecommendedDisplayCIELabValue"):
            rgb = hd.color.CIELabColor.from_dicom_value(item.RecommendedDisplayCIELabValue).to_rgb(clip=True)
            color = tuple(c / 255.0 for c in rgb)
        extra = {key: str(item.get(keyword)) for key, keyword in
                 (("algorithm_type", "SegmentAlgorithmType"), ("algorithm_name", "SegmentAlgorithmName"))
                 if item.get(keyword)}
        labels.append(SegmentLabel(int(item.SegmentNumber), str(item.get("SegmentLabel", "")), color, terminology, extra))
    return labels


def _require_same_frame(seg, source: SourceSeries, where: Path) -> None:
    volume = source.volume
    rows, columns = volume.array.shape[1:]
    if (int(seg.Rows), int(seg.Columns)) != (rows, columns):
        raise MedAIError(f"its frames are {seg.Columns}x{seg.Rows} pixels but the series' images are {columns}x{rows}; "
                         "a SEG on another grid is not supported", where)
    uid = str(seg.get("FrameOfReferenceUID", ""))
    if uid and uid != source.frame_of_reference_uid:
        raise MedAIError(f"is in frame of reference {uid}, not the series' {source.frame_of_reference_uid}: it was "
                         "made for other images", where)
    orientation = first_item(first_item(seg, "SharedFunctionalGroupsSequence"), "PlaneOrientationSequence")
    if orientation is not None and orientation.get("ImageOrientationPatient"):
        cosines = np.array([float(v) for v in orientation.ImageOrientationPatient])
        expected = np.concatenate([volume.direction[:, 0], volume.direction[:, 1]])
        if not np.allclose(cosines, expected, atol=ORIENTATION_TOLERANCE):
            raise MedAIError(f"its frames are oriented {cosines.round(5).tolist()}, the series' images "
                             f"{expected.round(5).tolist()}; a SEG on another grid is not supported", where)


def _slice_of_frames(seg, source: SourceSeries, where: Path) -> list[int]:
    """K of every SEG frame: by referenced source image, else by position; positions must agree either way."""
    volume = source.volume
    index = source.slice_index()
    tolerance = max(POSITION_TOLERANCE, 0.01 * float(volume.spacing.min()))
    shared = first_item(seg, "SharedFunctionalGroupsSequence")
    slices = []
    for n, groups in enumerate(seg.PerFrameFunctionalGroupsSequence):
        k = _referenced_slice(groups, index)
        position_item = first_item(groups, "PlanePositionSequence") or first_item(shared, "PlanePositionSequence")
        position = None
        if position_item is not None and position_item.get("ImagePositionPatient"):
            position = np.array([float(v) for v in position_item.ImagePositionPatient])
        if k is None:
            if position is None:
                raise MedAIError(f"frame {n + 1} references no image of the series and has no position", where)
            ijk = volume.ijk_indices(position)[0]
            k = int(round(ijk[2]))
            if not 0 <= k < volume.array.shape[0]:
                raise MedAIError(f"frame {n + 1} lies outside the series (at slice {ijk[2]:.2f} of "
                                 f"{volume.array.shape[0]})", where)
        if position is not None:
            expected = volume.lps_points([[0, 0, k]])[0]
            if np.linalg.norm(position - expected) > tolerance:
                raise MedAIError(f"frame {n + 1} is at {position.round(4).tolist()} but its slice {k} of the series is at "
                                 f"{expected.round(4).tolist()}; a SEG on another grid is not supported", where)
        slices.append(k)
    return slices


def _referenced_slice(groups, index: dict) -> Optional[int]:
    for derivation in groups.get("DerivationImageSequence") or []:
        for source in derivation.get("SourceImageSequence") or []:
            uid = str(source.get("ReferencedSOPInstanceUID", ""))
            frames = source.get("ReferencedFrameNumber")
            frame = None if frames in (None, "") else int(frames if not hasattr(frames, "__len__") else frames[0])
            for key in ((uid, frame), (uid, None)):
                if key in index:
                    return index[key]
    return None


def _segment_numbers_of_frames(seg, kind: str, where: Path) -> list[Optional[int]]:
    if kind == "LABELMAP":
        return [None] * int(seg.NumberOfFrames)
    numbers = []
    shared = first_item(seg, "SharedFunctionalGroupsSequence")
    for n, groups in enumerate(seg.PerFrameFunctionalGroupsSequence):
        item = first_item(groups, "SegmentIdentificationSequence") or first_item(shared, "SegmentIdentificationSequence")
        if item is None:
            raise MedAIError(f"frame {n + 1} does not say which segment it holds", where)
        numbers.append(int(item.ReferencedSegmentNumber))
    return numbers
