"""Label maps + :class:`SegmentLabel` cards <-> segmentation nodes, and ``.seg.nrrd`` files.

A label map becomes one segmentation node with one segment per label: its name, colour and terminology
entry, and its label value. All segments share one binary labelmap layer holding the label map's own
values, so a saved ``.seg.nrrd`` keeps them (``SegmentN_LabelValue``). A label described by the card but
absent from the label map still gets its (empty) segment, so the node always matches the card; a DICOM SEG
export must skip empty segments. A label without terminology keeps the default Slicer gives every new
segment ("Tissue", 3D Slicer General Anatomy list), as a segment drawn in Segment Editor would; names and
colours are marked as not auto-generated, so Slicer does not replace them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import slicer
import vtk

from medai.errors import MedAIError, PathLike
from medai.io.atomic import write_atomically
from medai.labels import SegmentLabel, Terminology
from medai.slicer.headless import init_headless
from medai.slicer.image_data import array_from_image, oriented_image, smallest_int_dtype
from medai.slicer.volume_nodes import node_grid
from medai.volume import Volume

BINARY_LABELMAP = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()


def segmentation_node_from_labels(
    label_map: Union[Volume, np.ndarray],
    labels: Sequence[SegmentLabel],
    reference_node,
    name: str = "Segmentation",
    closed_surface: bool = False,
) -> "slicer.vtkMRMLSegmentationNode":
    """A segmentation node of ``label_map`` (on ``reference_node``'s grid) with one segment per label.

    ``label_map`` is a Volume on the reference volume's world grid (as :func:`volume_from_node` gives it)
    or a bare K,J,I array of its shape. The node goes into the reference node's scene, under the same
    parent transform, with the reference image geometry, a display node, and closed surfaces if asked.
    """
    array = _checked_label_array(label_map, labels, reference_node)
    node = reference_node.GetScene().AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    was_modifying = node.StartModify()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    node.SetAndObserveTransformNodeID(reference_node.GetTransformNodeID())
    node.CreateDefaultDisplayNodes()
    ijk_to_ras = vtk.vtkMatrix4x4()
    reference_node.GetIJKToRASMatrix(ijk_to_ras)
    layer = oriented_image(array, slicer.util.arrayFromVTKMatrix(ijk_to_ras))
    segmentation = node.GetSegmentation()
    for label in labels:
        if not segmentation.AddSegment(_segment(label, layer), segmentation.GenerateUniqueSegmentID(label.name)):
            raise MedAIError(f"Slicer could not add segment '{label.name}' to segmentation '{name}'")
    node.EndModify(was_modifying)
    if closed_surface and not node.CreateClosedSurfaceRepresentation():
        raise MedAIError(f"Slicer could not make closed surfaces for segmentation '{name}'")
    return node


def labels_from_segmentation_node(seg_node, reference) -> tuple[Volume, list[SegmentLabel]]:
    """The segmentation as a label map on ``reference``'s grid (a Volume or a volume node), and its labels.

    Each segment keeps its label value when the values are distinct and positive (as in a node made by
    :func:`segmentation_node_from_labels` or read from a ``.seg.nrrd`` with one layer); otherwise segments
    are numbered 1..N in order. Where segments overlap, the later segment wins.
    """
    segmentation = seg_node.GetSegmentation()
    segment_ids = list(segmentation.GetSegmentIDs())
    segments = [segmentation.GetSegment(segment_id) for segment_id in segment_ids]
    values = _label_values(segments)
    grid = reference if isinstance(reference, Volume) else node_grid(reference)
    if not segments:
        return grid.with_array(np.zeros(grid.array.shape, np.uint8)), []
    if not segmentation.CreateRepresentation(BINARY_LABELMAP):
        raise MedAIError(f"segmentation '{seg_node.GetName()}' cannot be converted to a binary labelmap")
    reference_node = _grid_node(reference) if isinstance(reference, Volume) else reference
    merged = slicer.vtkOrientedImageData()
    slicer.vtkSlicerSegmentationsModuleLogic.GenerateMergedLabelmapInReferenceGeometry(
        seg_node, reference_node, _vtk_array(vtk.vtkStringArray, segment_ids),
        slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, merged, _vtk_array(vtk.vtkIntArray, values),
    )
    expected_extent = tuple(v for n in grid.size_ijk for v in (0, n - 1))
    if merged.GetExtent() != expected_extent:
        raise MedAIError(f"Slicer exported segmentation '{seg_node.GetName()}' with extent {merged.GetExtent()}, not the reference grid's {expected_extent}")
    array = array_from_image(merged).astype(smallest_int_dtype(0, max(values)))
    labels = [
        SegmentLabel(value, segment.GetName(), tuple(segment.GetColor()), Terminology.from_slicer_string(segment.GetTerminology()))
        for value, segment in zip(values, segments)
    ]
    return grid.with_array(array), labels


def save_segmentation_node(node, path: PathLike) -> Path:
    """Write ``node`` as a ``.seg.nrrd`` with Slicer's segmentation storage node; returns the path written.

    A segmentation under a parent transform is refused: the file would silently drop the transform.
    """
    p = Path(path)
    if not p.name.lower().endswith(".seg.nrrd"):
        raise MedAIError("segmentations are written as .seg.nrrd files", p)
    if not p.parent.is_dir():
        raise MedAIError("the folder to write into does not exist", p.parent)
    if node.GetParentTransformNode() is not None:
        raise MedAIError(f"segmentation '{node.GetName()}' is under a transform; harden it in Slicer before saving", p)
    def write(partial: Path) -> None:
        storage = slicer.vtkMRMLSegmentationStorageNode()
        storage.SetFileName(str(partial))
        storage.SetUseCompression(True)
        if not storage.WriteData(node):
            raise MedAIError("Slicer could not write the segmentation", p)

    return write_atomically(p, write)


def load_segmentation_node(path: PathLike, name: Optional[str] = None) -> "slicer.vtkMRMLSegmentationNode":
    """Load a segmentation file (``.seg.nrrd`` and the other formats Slicer reads) into the scene."""
    p = Path(path)
    if not p.is_file():
        raise MedAIError("no such file", p)
    init_headless()
    node = slicer.modules.segmentations.logic().LoadSegmentationFromFile(str(p), True, name)
    if node is None:
        raise MedAIError("not a segmentation Slicer can read", p)
    return node


def segment_mask(node, segment_id: Optional[str], grid_node, shape) -> np.ndarray:
    """The segment as a boolean K,J,I array on ``grid_node``'s voxels (all False for no segment)."""
    if segment_id is None:
        return np.zeros(shape, bool)
    try:
        array = slicer.util.arrayFromSegmentBinaryLabelmap(node, segment_id, grid_node)
    except RuntimeError as error:
        raise MedAIError(f"Slicer could not export segment '{segment_name(node, segment_id)}' of "
                         f"'{node.GetName()}' onto the reference geometry ({error})") from None
    if array.shape != tuple(shape):
        raise MedAIError(f"Slicer exported segment '{segment_name(node, segment_id)}' of '{node.GetName()}' with "
                         f"shape {array.shape}, not the reference geometry's {tuple(shape)}")
    return array > 0


def segment_name(node, segment_id: Optional[str]) -> str:
    """The segment's name, or "" for no segment."""
    return "" if segment_id is None else node.GetSegmentation().GetSegment(segment_id).GetName()


def _checked_label_array(label_map: Union[Volume, np.ndarray], labels: Sequence[SegmentLabel], reference_node) -> np.ndarray:
    """The label array in the smallest integer type, once it is known to fit the reference grid and the card."""
    grid = node_grid(reference_node)
    if isinstance(label_map, Volume):
        if not label_map.same_grid(grid):
            raise MedAIError(
                f"the label map is not on the grid of volume '{reference_node.GetName()}' "
                f"(label map {label_map!r}, volume {grid!r}); resample it with nearest neighbour first"
            )
        array = label_map.array
    else:
        array = np.asarray(label_map)
        if array.shape != grid.array.shape:
            raise MedAIError(f"the label array's shape {array.shape} is not volume '{reference_node.GetName()}''s {grid.array.shape}")
    if array.dtype.kind not in "biu":
        raise MedAIError(f"label maps hold integers, not {array.dtype}")
    values = [label.value for label in labels]
    if len(set(values)) != len(values) or min(values, default=1) < 1:
        raise MedAIError(f"label values must be distinct and at least 1; got {values}")
    undescribed = np.isin(array, [0, *values], invert=True)
    if undescribed.any():
        raise MedAIError(f"the label map holds values {np.unique(array[undescribed]).tolist()} that no label describes")
    return array.astype(smallest_int_dtype(0, max(values, default=0)), copy=False)


def _segment(label: SegmentLabel, layer) -> "slicer.vtkSegment":
    """A segment for ``label`` whose binary labelmap is the shared ``layer``."""
    segment = slicer.vtkSegment()
    segment.SetName(label.name)
    segment.SetNameAutoGenerated(False)
    segment.SetColor(*label.color)
    segment.SetColorAutoGenerated(False)
    if label.terminology is not None:
        segment.SetTerminology(label.terminology.to_slicer_string())
    segment.SetLabelValue(label.value)
    segment.AddRepresentation(BINARY_LABELMAP, layer)
    return segment


def _label_values(segments: list) -> list[int]:
    """The segments' own label values when distinct and positive, else 1..N."""
    values = [segment.GetLabelValue() for segment in segments]
    if len(set(values)) == len(values) and min(values, default=1) >= 1:
        return values
    return list(range(1, len(segments) + 1))


def _grid_node(grid: Volume) -> "slicer.vtkMRMLScalarVolumeNode":
    """A volume node outside any scene describing ``grid`` (world coordinates) with no voxels allocated."""
    image = vtk.vtkImageData()
    image.SetDimensions(grid.size_ijk)
    node = slicer.vtkMRMLScalarVolumeNode()
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(grid.ijk_to_ras_matrix()))
    node.SetAndObserveImageData(image)
    return node


def _vtk_array(array_class, values: Sequence):
    """A VTK string or int array holding ``values``."""
    array = array_class()
    for value in values:
        array.InsertNextValue(value)
    return array
