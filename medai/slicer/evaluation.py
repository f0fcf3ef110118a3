"""Evaluate a segmentation node against a reference segmentation node, from the Slicer Python console::

    from medai.slicer import evaluate_segmentation_nodes
    table = evaluate_segmentation_nodes(predictionNode, referenceNode)

Each compared segment becomes one row of a table node: Dice, HD95 and mean surface distance (mm), both volumes,
their difference (mL and %), computed by the engine's :func:`medai.evaluation.label_metrics` (the same numbers
``medai evaluate`` gives). Both segments are exported onto one voxel grid, the *reference geometry*:
``referenceVolumeNode`` if given, else the volume the reference segmentation was made on, else the reference
segmentation's own geometry. Slicer's export places each segment by its physical position, so the two nodes may
have been drawn on different grids (another orientation, a flipped or oblique volume). Segments are taken one by
one (Slicer's own per-segment export), so overlapping segments such as "Brain" and "Cerebellum" are each whole.

Segments are matched by name, or by explicit ``segment_pairs`` [(prediction segment, reference segment), ...]
given by name or segment ID. A segment found in one node only still gets a row, compared with an empty mask (Dice
0, distances undefined) and a note saying which node lacks it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import slicer
import vtk

from medai.errors import MedAIError
from medai.evaluation.segmentation_metrics import METRICS, label_metrics
from medai.slicer.segmentation_nodes import segment_mask, segment_name
from medai.slicer.volume_nodes import node_grid

#: Table columns for the engine's metrics, in :data:`medai.evaluation.METRICS` order.
METRIC_COLUMNS = {
    "dice": "Dice",
    "hd95_mm": "HD95 (mm)",
    "msd_mm": "Mean surface distance (mm)",
    "volume_prediction_ml": "Prediction volume (mL)",
    "volume_reference_ml": "Reference volume (mL)",
    "volume_difference_ml": "Volume difference (mL)",
    "volume_difference_abs_ml": "Absolute volume difference (mL)",
    "volume_difference_percent": "Volume difference (%)",
}
TEXT_COLUMNS = ("Segment", "Prediction segment", "Reference segment", "Note")


def evaluate_segmentation_nodes(predictionNode, referenceNode, referenceVolumeNode=None,
                                segment_pairs: Optional[Sequence[tuple[str, str]]] = None,
                                name: Optional[str] = None) -> "slicer.vtkMRMLTableNode":
    """A table node comparing the segments of ``predictionNode`` with those of ``referenceNode`` (see the module
    notes); it is added to the reference node's scene as ``name`` (default "<prediction> vs <reference>")."""
    scene = referenceNode.GetScene()
    pairs = _pairs(predictionNode, referenceNode, segment_pairs)
    grid_node, temporary = _grid_node(referenceNode, referenceVolumeNode)
    try:
        grid = node_grid(grid_node)
        spacing_kji = grid.spacing[::-1]
        rows = []
        for pred_id, ref_id in pairs:
            pred = segment_mask(predictionNode, pred_id, grid_node, grid.array.shape)
            ref = segment_mask(referenceNode, ref_id, grid_node, grid.array.shape)
            rows.append((segment_name(predictionNode, pred_id), segment_name(referenceNode, ref_id),
                         label_metrics(pred, ref, spacing_kji)))
    finally:
        if temporary:
            scene.RemoveNode(grid_node)
    title = name or f"{predictionNode.GetName()} vs {referenceNode.GetName()}"
    return _table(scene, scene.GenerateUniqueName(title) if scene.GetFirstNodeByName(title) else title, rows)


def _segment_id(node, key: str) -> Optional[str]:
    """The ID of the segment with ID or name ``key``; None if there is none; an error if the name is not unique."""
    segmentation = node.GetSegmentation()
    if segmentation.GetSegment(key) is not None:
        return key
    ids = [i for i in segmentation.GetSegmentIDs() if segmentation.GetSegment(i).GetName() == key]
    if len(ids) > 1:
        raise MedAIError(f"segmentation '{node.GetName()}' has {len(ids)} segments named '{key}'; "
                         "rename them or pass segment_pairs with segment IDs")
    return ids[0] if ids else None


def _pairs(prediction, reference, segment_pairs) -> list[tuple[Optional[str], Optional[str]]]:
    """[(prediction segment ID or None, reference segment ID or None)]."""
    if segment_pairs is not None:
        pairs = []
        for pred_key, ref_key in segment_pairs:
            pred_id, ref_id = _segment_id(prediction, pred_key), _segment_id(reference, ref_key)
            for node, key, found in ((prediction, pred_key, pred_id), (reference, ref_key, ref_id)):
                if found is None:
                    raise MedAIError(f"segmentation '{node.GetName()}' has no segment named (or with ID) '{key}'")
            pairs.append((pred_id, ref_id))
        return pairs
    names = lambda node: [node.GetSegmentation().GetSegment(i).GetName()  # noqa: E731
                          for i in node.GetSegmentation().GetSegmentIDs()]
    ref_names, pred_names = names(reference), names(prediction)
    pairs = [(_segment_id(prediction, n) if n in pred_names else None, _segment_id(reference, n)) for n in ref_names]
    pairs += [(_segment_id(prediction, n), None) for n in pred_names if n not in ref_names]
    if not pairs:
        raise MedAIError(f"segmentations '{prediction.GetName()}' and '{reference.GetName()}' have no segments")
    return pairs


def _grid_node(reference, reference_volume) -> tuple:
    """(volume node defining the reference geometry, whether it is a temporary node to remove afterwards)."""
    if reference_volume is not None:
        return reference_volume, False
    volume = reference.GetNodeReference(reference.GetReferenceImageGeometryReferenceRole())
    if volume is not None:
        return volume, False
    geometry = reference.GetSegmentation().GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    if not geometry:
        raise MedAIError(f"segmentation '{reference.GetName()}' has no reference geometry; "
                         "give referenceVolumeNode (the volume it was drawn on)")
    image = slicer.vtkOrientedImageData()
    slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometry, image)
    to_world = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(to_world)
    ijk_to_ras = slicer.util.arrayFromVTKMatrix(to_world)
    extent = image.GetExtent()
    ijk_to_ras[:3, 3] = (ijk_to_ras @ [extent[0], extent[2], extent[4], 1.0])[:3]  # voxel 0 = the extent's start
    voxels = vtk.vtkImageData()
    voxels.SetDimensions(extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1)
    node = reference.GetScene().AddNewNodeByClass("vtkMRMLScalarVolumeNode", "MedAI evaluation grid")
    node.SetAndObserveImageData(voxels)
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras))
    node.SetAndObserveTransformNodeID(reference.GetTransformNodeID())
    return node, True


def _table(scene, name: str, rows: list[tuple[str, str, dict]]) -> "slicer.vtkMRMLTableNode":
    """The table node: one row per compared segment; undefined values are NaN."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = node.GetTable()
    text = {title: vtk.vtkStringArray() for title in TEXT_COLUMNS}
    numbers = {metric: vtk.vtkDoubleArray() for metric in METRICS}
    for title, column in text.items():
        column.SetName(title)
    for metric, column in numbers.items():
        column.SetName(METRIC_COLUMNS[metric])
    for pred_name, ref_name, metrics in rows:
        note = "not in the prediction" if not pred_name else "not in the reference" if not ref_name else ""
        for title, value in zip(TEXT_COLUMNS, (ref_name or pred_name, pred_name, ref_name, note)):
            text[title].InsertNextValue(value)
        for metric, column in numbers.items():
            column.InsertNextValue(metrics[metric])
    for title in TEXT_COLUMNS[:3]:
        table.AddColumn(text[title])
    for metric in METRICS:
        table.AddColumn(numbers[metric])
        unit = METRIC_COLUMNS[metric].partition("(")[2].rstrip(")")
        if unit:
            node.SetColumnUnitLabel(METRIC_COLUMNS[metric], unit)
    table.AddColumn(text["Note"])
    node.Modified()
    return node


def table_rows(table_node) -> list[dict]:
    """The table's rows as {column name: value} (numbers as float, NaN for undefined), for scripts and tests."""
    table = table_node.GetTable()
    out = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for c in range(table.GetNumberOfColumns()):
            column = table.GetColumn(c)
            value = column.GetValue(r)
            row[column.GetName()] = float(value) if isinstance(column, vtk.vtkDoubleArray) else str(value)
        out.append(row)
    return out


__all__ = ["evaluate_segmentation_nodes", "table_rows"]
