"""Segment statistics as a table node next to the segmentation: volume and intensities of each segment.

The numbers are the engine's (:mod:`medai.evaluation.statistics`, the same as ``medai segment --statistics``),
computed per segment on the volume's voxels, so overlapping segments (after editing) each count all their voxels.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import vtk

from medai.errors import MedAIError
from medai.evaluation.statistics import COLUMNS, mask_statistics
from medai.slicer.segmentation_nodes import segment_mask
from medai.slicer.volume_nodes import volume_from_node

#: The table's column titles (units in the titles, as Slicer's Segment Statistics shows them).
TITLES = {"segment": "Segment", "label": "Label value", "voxels": "Voxel count", "volume_ml": "Volume (ml)",
          "mean": "Mean", "std": "Standard deviation", "min": "Minimum", "max": "Maximum", "median": "Median"}
#: Node reference from a segmentation node to its statistics table.
STATISTICS_REFERENCE = "MedAI.Statistics"


def segment_statistics_table(segmentation_node, volume_node=None, name: Optional[str] = None):
    """A table node with one row per segment of ``segmentation_node`` over ``volume_node``'s voxels (default: the
    segmentation's reference volume); the segmentation node references it (``MedAI.Statistics``)."""
    volume_node = volume_node or segmentation_node.GetNodeReference("referenceImageGeometryRef")
    if volume_node is None:
        raise MedAIError(f"segmentation '{segmentation_node.GetName()}' has no reference volume; pass the volume node")
    volume = volume_from_node(volume_node)
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    segmentation = segmentation_node.GetSegmentation()
    rows = []
    for segment_id in segmentation.GetSegmentIDs():
        mask = segment_mask(segmentation_node, segment_id, volume_node, volume.array.shape)
        rows.append({"segment": segmentation.GetSegment(segment_id).GetName(), "label": segmentation.GetSegment(
            segment_id).GetLabelValue(), **mask_statistics(mask, volume.array, voxel_ml)})
    scene = segmentation_node.GetScene()
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", name or f"{segmentation_node.GetName()} statistics")
    for column in COLUMNS:
        array = vtk.vtkStringArray() if column == "segment" else vtk.vtkDoubleArray()
        array.SetName(TITLES[column])
        for row in rows:
            array.InsertNextValue(row[column] if column == "segment" else float(row[column]))
        table.GetTable().AddColumn(array)
    table.Modified()
    segmentation_node.SetNodeReferenceID(STATISTICS_REFERENCE, table.GetID())
    return table


__all__ = ["segment_statistics_table", "STATISTICS_REFERENCE"]
