"""Segmentation node -> DICOM SEG / RTSTRUCT, for segmentations whose reference volume came from DICOM.

The source series is found from the volume node: MedAI's loader records the folder and series UID
(attributes ``MedAI.DICOMFolder`` and ``MedAI.SeriesInstanceUID``); a volume loaded by Slicer's DICOM module
carries ``DICOM.instanceUIDs``, whose files Slicer's DICOM database knows. The segmentation is exported onto
that series' grid and written by the engine's writers, so the console API and ``medai segment`` make the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import slicer

from medai.errors import MedAIError, PathLike
from medai.slicer.provenance import model_of
from medai.slicer.volume_nodes import FOLDER_ATTRIBUTE, SERIES_ATTRIBUTE
from medai.volume import Volume



def dicom_source(volume_node) -> Volume:
    """The DICOM series a volume node was loaded from, read again with its per-slice UIDs and files."""
    from medai.io.dicom.series.read import read_dicom

    folder, series_uid = volume_node.GetAttribute(FOLDER_ATTRIBUTE), volume_node.GetAttribute(SERIES_ATTRIBUTE)
    uids = volume_node.GetAttribute("DICOM.instanceUIDs")
    if not folder and uids and getattr(slicer, "dicomDatabase", None) is not None:
        files = [slicer.dicomDatabase.fileForInstance(uid) for uid in uids.split()]
        if files and all(files):
            folder = str(Path(files[0]).parent)
            series_uid = slicer.dicomDatabase.seriesForFile(files[0]) if hasattr(slicer.dicomDatabase, "seriesForFile") else None
    if not folder:
        raise MedAIError(f"volume '{volume_node.GetName()}' was not loaded from a DICOM series; DICOM SEG and "
                         "RTSTRUCT need the source images")
    return read_dicom(folder, series_uid=series_uid or None)


def _export(seg_node, path: PathLike, volume_node, writer) -> Path:
    from medai.slicer.segmentation_nodes import labels_from_segmentation_node

    volume_node = volume_node or seg_node.GetNodeReference("referenceImageGeometryRef")
    if volume_node is None:
        raise MedAIError(f"segmentation '{seg_node.GetName()}' has no reference volume; pass the DICOM volume node")
    source = dicom_source(volume_node)
    label_map, labels = labels_from_segmentation_node(seg_node, source)
    name, version = model_of(seg_node) or ("MedAI", "")
    return writer(label_map, labels, source, Path(path), algorithm_name=name, algorithm_version=version)


def export_dicom_seg(seg_node, path: PathLike, volume_node=None) -> Path:
    """Write ``seg_node`` as a DICOM SEG referencing the source images of ``volume_node`` (default: its reference)."""
    from medai.io.dicom.seg import write_dicom_seg

    return _export(seg_node, path, volume_node, write_dicom_seg)


def export_rtstruct(seg_node, path: PathLike, volume_node: Optional[object] = None) -> Path:
    """Write ``seg_node`` as an RTSTRUCT on the source images of ``volume_node`` (default: its reference)."""
    from medai.io.dicom.rtstruct import write_rtstruct

    return _export(seg_node, path, volume_node, write_rtstruct)


def load_dicom_segmentation(path: PathLike, volume_node, name: Optional[str] = None):
    """A DICOM SEG or RTSTRUCT (e.g. a manual contour from a planning system) as a segmentation node on the grid
    of ``volume_node``, which must have been loaded from the series the file references."""
    import pydicom

    from medai.slicer.segmentation_nodes import segmentation_node_from_labels

    try:
        modality = pydicom.dcmread(path, stop_before_pixels=True, force=True).get("Modality")
    except (OSError, pydicom.errors.InvalidDicomError) as error:
        raise MedAIError(f"cannot be read as DICOM ({error})", path) from None
    source = dicom_source(volume_node)
    if modality == "SEG":
        from medai.io.dicom.seg import read_dicom_seg

        label_map, labels = read_dicom_seg(path, source)
    elif modality == "RTSTRUCT":
        from medai.io.dicom.rtstruct import read_rtstruct

        label_map, labels = read_rtstruct(path, source)
    else:
        raise MedAIError(f"is a DICOM {modality or 'object'} file, not a SEG or RTSTRUCT", path)
    return segmentation_node_from_labels(label_map, labels, volume_node, name=name or Path(path).stem)
