"""The MRML bridge: volume and segmentation nodes <-> the engine's Volume and labels. Imports slicer, never qt.

Works inside the Slicer application and, through :func:`init_headless`, with slicer-core alone.
``MedAISegLogic`` and ``MedAIClassifyLogic`` (the modules' logics) load on first access.
"""

from typing import Any

from medai.slicer.dicom_exports import export_dicom_seg, export_rtstruct, load_dicom_segmentation
from medai.slicer.exports import export_segmentation_meshes
from medai.slicer.headless import init_headless
from medai.slicer.segmentation_nodes import (
    labels_from_segmentation_node,
    load_segmentation_node,
    save_segmentation_node,
    segmentation_node_from_labels,
)
from medai.slicer.volume_nodes import load_volume_node, node_from_volume, save_volume_node, volume_from_node

__all__ = [
    "MedAIClassifyLogic",
    "MedAISegLogic",
    "evaluate_segmentation_nodes",
    "export_dicom_seg",
    "export_rtstruct",
    "export_segmentation_meshes",
    "extract_segment_features",
    "init_headless",
    "labels_from_segmentation_node",
    "load_dicom_segmentation",
    "load_segmentation_node",
    "load_volume_node",
    "node_from_volume",
    "save_segmentation_node",
    "save_volume_node",
    "segmentation_node_from_labels",
    "volume_from_node",
]


def __getattr__(name: str) -> Any:
    if name == "MedAISegLogic":
        from medai.slicer.seg_logic import MedAISegLogic

        return MedAISegLogic
    if name == "MedAIClassifyLogic":
        from medai.slicer.classify_logic import MedAIClassifyLogic

        return MedAIClassifyLogic
    if name == "evaluate_segmentation_nodes":
        from medai.slicer.evaluation import evaluate_segmentation_nodes

        return evaluate_segmentation_nodes
    if name == "extract_segment_features":
        from medai.slicer.features import extract_segment_features

        return extract_segment_features
    if name == "segment_statistics_table":
        from medai.slicer.statistics import segment_statistics_table

        return segment_statistics_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
