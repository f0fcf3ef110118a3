"""Reading a DICOM RT Structure Set: its ROIs and contours in LPS, and as a label map on a series grid.

:func:`read_rtstruct_contours` needs no images: ROI numbers, names, colours, interpreted types and every contour
(points in LPS mm, geometric type, referenced images).

:func:`read_rtstruct` rasterises the CLOSED_PLANAR contours of each ROI onto a series. Each contour belongs to the
slice nearest to it along the slice normal, and all its points must lie within a quarter of the slice spacing of
that slice's plane; otherwise it is refused (the structure set was drawn on other slices, and snapping it to the
nearest one could misplace it by up to half a slice), as is a structure set of another frame of reference. All
contours of an ROI on a slice are filled together at pixel centres by the even-odd rule
(:func:`medai.io.dicom.rtstruct.contours.fill_even_odd`: contours inside others are holes, islands in holes fill again),
the convention :mod:`medai.io.dicom.rtstruct.write` writes, so its files read back exactly. Label values are ROI
numbers. POINT and OPEN contours are passed over; ROIs without closed contours are left out with a logged warning.
Overlapping ROIs (common in radiotherapy: the body contains the organs) are refused unless ``overlap="later"``,
where the ROI later in the structure set (or in ``rois``) wins; ``rois`` picks ROIs by name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.io.dicom.derived import (DEFAULT_COLOR, check_overlap_mode, code_of, first_item, label_dtype, place_segment,
                                    read_dicom_object, series_volume, source_series)
from medai.io.dicom.rtstruct.contours import fill_even_odd
from medai.io.dicom.rtstruct.write import RT_STRUCTURE_SET_STORAGE
from medai.labels import Code, SegmentLabel
from medai.volume import Volume

log = logging.getLogger(__name__)

#: A contour may lie this fraction of the slice spacing off its slice's plane; further off, which slice it
#: belongs to is a guess (a structure set made on other slices of the same frame of reference), so it is refused.
PLANE_TOLERANCE = 0.25


@dataclass(frozen=True)
class Contour:
    """One contour: points (N, 3) in LPS mm, its geometric type and the SOP instance UIDs it references."""

    points: np.ndarray
    geometric_type: str
    image_uids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Roi:
    """One ROI of a structure set and its contours."""

    number: int
    name: str
    color: Optional[tuple[float, float, float]]  #: RGB in 0..1, None when the file gives none
    interpreted_type: str
    identification_code: Optional[Code]
    contours: list[Contour] = field(default_factory=list)

    def label(self) -> SegmentLabel:
        extra = {"rt_roi_interpreted_type": self.interpreted_type}
        if self.identification_code is not None:
            extra["rt_roi_identification_code"] = self.identification_code
        color = self.color if self.color is not None else DEFAULT_COLOR
        return SegmentLabel(self.number, self.name, color, None, extra)


@dataclass(frozen=True)
class StructureSet:
    """What an RTSTRUCT holds, without its images."""

    label: str
    frame_of_reference_uid: str
    rois: list[Roi]
    referenced_series_uids: tuple[str, ...] = ()


def read_rtstruct_contours(path: PathLike) -> StructureSet:
    """The ROIs and contours (in LPS) of the RTSTRUCT at ``path``."""
    p = Path(path)
    ds = read_dicom_object(p, {RT_STRUCTURE_SET_STORAGE: "RT Structure Set Storage"}, "an RT Structure Set")
    contours_of = {int(item.ReferencedROINumber): item for item in ds.get("ROIContourSequence") or []
                   if "ReferencedROINumber" in item}
    observations = {int(item.ReferencedROINumber): item for item in ds.get("RTROIObservationsSequence") or []
                    if "ReferencedROINumber" in item}
    rois = []
    for item in ds.get("StructureSetROISequence") or []:
        number = int(item.ROINumber)
        contour_item = contours_of.get(number)
        observation = observations.get(number)
        color = None
        if contour_item is not None and contour_item.get("ROIDisplayColor"):
            color = tuple(min(max(float(c) / 255.0, 0.0), 1.0) for c in contour_item.ROIDisplayColor)
        contours = [_contour(c, number, p) for c in (contour_item.get("ContourSequence") or [])] if contour_item else []
        rois.append(Roi(number, str(item.get("ROIName", "")), color,
                        str(observation.get("RTROIInterpretedType", "") or "") if observation else "",
                        code_of(first_item(observation, "RTROIIdentificationCodeSequence")), contours))
    frame = first_item(ds, "ReferencedFrameOfReferenceSequence")
    frame_uid = str(frame.get("FrameOfReferenceUID", "")) if frame is not None else ""
    if not frame_uid:
        frame_uid = next((str(i.get("ReferencedFrameOfReferenceUID")) for i in ds.get("StructureSetROISequence") or []
                          if i.get("ReferencedFrameOfReferenceUID")), "")
    series_uids = tuple(str(s.SeriesInstanceUID) for f in ds.get("ReferencedFrameOfReferenceSequence") or []
                        for st in f.get("RTReferencedStudySequence") or []
                        for s in st.get("RTReferencedSeriesSequence") or [] if "SeriesInstanceUID" in s)
    return StructureSet(str(ds.get("StructureSetLabel", "")), frame_uid, rois, series_uids)


def _contour(item, roi: int, path: Path) -> Contour:
    data = item.get("ContourData")
    try:
        values = np.atleast_1d(np.asarray([] if data is None else data, dtype=float)).ravel()
    except (TypeError, ValueError):
        raise MedAIError(f"ROI {roi} has a contour with unreadable ContourData", path) from None
    if values.size % 3 or not np.all(np.isfinite(values)):
        raise MedAIError(f"ROI {roi} has a contour whose ContourData is not a list of x, y, z points", path)
    uids = tuple(str(ref.ReferencedSOPInstanceUID) for ref in item.get("ContourImageSequence") or []
                 if "ReferencedSOPInstanceUID" in ref)
    return Contour(values.reshape(-1, 3), str(item.get("ContourGeometricType", "")).upper(), uids)


def read_rtstruct(path: PathLike, series: Union[Volume, PathLike], *, rois: Optional[Sequence[str]] = None,
                  overlap: str = "error") -> tuple[Volume, list[SegmentLabel]]:
    """The RTSTRUCT at ``path`` as a label map on ``series``' grid (a volume read by read_dicom, or its folder).

    ``rois`` picks ROIs by name (all by default); see the module notes for placement, filling and overlaps.
    """
    check_overlap_mode(overlap)
    p = Path(path)
    structure = read_rtstruct_contours(p)
    volume = series_volume(series)
    source = source_series(volume, p)
    if structure.frame_of_reference_uid and structure.frame_of_reference_uid != source.frame_of_reference_uid:
        raise MedAIError(f"is in frame of reference {structure.frame_of_reference_uid}, not the series' "
                         f"{source.frame_of_reference_uid}: it was made for other images", p)
    chosen = _choose(structure.rois, rois, p)
    out = np.zeros(volume.array.shape, label_dtype(max((roi.number for roi in chosen), default=0)))
    names = {roi.number: roi.name for roi in chosen}
    labels = []
    for roi in chosen:
        slices = _closed_contours_by_slice(roi, volume, p)
        if not slices:
            log.warning("%s: ROI %d %r has no closed planar contours; it is left out", p, roi.number, roi.name)
            continue
        for k, polygons in sorted(slices.items()):
            place_segment(out, k, fill_even_odd(polygons, volume.array.shape[1:]), roi.number, names, overlap, p)
        labels.append(roi.label())
    return Volume(out, volume.spacing, volume.origin, volume.direction, {"source": str(p)}), labels


def _choose(all_rois: list[Roi], names: Optional[Sequence[str]], where: Path) -> list[Roi]:
    numbers = [roi.number for roi in all_rois]
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if repeated:
        raise MedAIError(f"uses ROI number(s) {repeated} more than once", where)
    if any(n <= 0 for n in numbers):
        raise MedAIError(f"has ROI numbers that are not positive ({min(numbers)}); they cannot be label values", where)
    if names is None:
        return list(all_rois)
    by_name = {roi.name: roi for roi in all_rois}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise MedAIError(f"has no ROI named {', '.join(map(repr, missing))}; it has {', '.join(repr(r.name) for r in all_rois)}",
                         where)
    return [by_name[name] for name in names]


def _closed_contours_by_slice(roi: Roi, volume: Volume, where: Path) -> dict[int, list[np.ndarray]]:
    """(i, j) polygons of ``roi``'s closed planar contours per slice k of ``volume``."""
    count = volume.array.shape[0]
    slices: dict[int, list[np.ndarray]] = {}
    for n, contour in enumerate(roi.contours):
        if contour.geometric_type != "CLOSED_PLANAR" or len(contour.points) < 3:
            continue
        ijk = volume.ijk_indices(contour.points)
        k = int(np.round(np.median(ijk[:, 2])))
        off = float(np.abs(ijk[:, 2] - k).max())
        if off >= PLANE_TOLERANCE or not 0 <= k < count:
            raise MedAIError(f"ROI {roi.number} {roi.name!r}: contour {n + 1} lies at slice positions "
                             f"{ijk[:, 2].min():.2f} to {ijk[:, 2].max():.2f}, not on "
                             f"a slice of the series (0 to {count - 1}); the structure set does not fit these images",
                             where)
        slices.setdefault(k, []).append(ijk[:, :2])
    return slices
