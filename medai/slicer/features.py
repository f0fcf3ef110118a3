"""Image features of a segment, from the Slicer Python console::

    from medai.slicer import extract_segment_features
    table = extract_segment_features(volumeNode, segmentationNode, segmentId)

The segment is exported onto the volume's voxel grid by Slicer itself (so a segmentation drawn on another
grid, orientation or under a transform lands where it is in space), taken alone (an overlapping segment does not
cut it), and the engine's :func:`medai.features.extract_features` computes the features: the same numbers
``medai features`` gives for that image and mask.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
import slicer
import vtk

from medai.errors import MedAIError
from medai.features import FeatureSettings, extract_features
from medai.slicer.segmentation_nodes import segment_mask
from medai.slicer.volume_nodes import volume_from_node

FEATURE_COLUMN = "Feature"
VALUE_COLUMN = "Value"


def extract_segment_features(volumeNode, segmentationNode, segmentId: str,
                             settings: Optional[FeatureSettings] = None,
                             name: Optional[str] = None) -> "slicer.vtkMRMLTableNode":
    """A table node (Feature, Value) with every feature of segment ``segmentId`` on ``volumeNode``'s intensities.

    ``settings`` are pyradiomics' defaults unless given (its ``label`` is ignored: the segment is the mask).
    The table is added to the volume's scene as ``name`` (default "<segment> features").
    """
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
    if segment is None:
        raise MedAIError(f"segmentation '{segmentationNode.GetName()}' has no segment '{segmentId}'")
    volume = volume_from_node(volumeNode)
    mask = segment_mask(segmentationNode, segmentId, volumeNode, volume.array.shape)
    if not mask.any():
        raise MedAIError(f"segment '{segment.GetName()}' is empty on the voxels of volume '{volumeNode.GetName()}'")
    settings = settings or FeatureSettings()
    values = extract_features(volume, volume.with_array(mask.astype(np.uint8)), replace(settings, label=1))
    return _table(volumeNode.GetScene(), name or f"{segment.GetName()} features", values)


def _table(scene, name: str, values: dict[str, float]) -> "slicer.vtkMRMLTableNode":
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    names = vtk.vtkStringArray()
    names.SetName(FEATURE_COLUMN)
    numbers = vtk.vtkDoubleArray()
    numbers.SetName(VALUE_COLUMN)
    for feature, value in values.items():
        names.InsertNextValue(feature)
        numbers.InsertNextValue(value)
    node.GetTable().AddColumn(names)
    node.GetTable().AddColumn(numbers)
    node.Modified()
    return node


def table_features(table_node) -> dict[str, float]:
    """The (Feature, Value) rows of a table made by :func:`extract_segment_features`, as a dict."""
    table = table_node.GetTable()
    names = table.GetColumnByName(FEATURE_COLUMN)
    numbers = table.GetColumnByName(VALUE_COLUMN)
    return {names.GetValue(r): float(numbers.GetValue(r)) for r in range(table.GetNumberOfRows())}
