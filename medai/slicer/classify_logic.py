"""MedAIClassify's logic: class probabilities of a volume node into a table node, and a saliency map node.

The Slicer module's Logic is this class, so the GUI, the Python console and the tests run the same code::

    from medai.slicer import init_headless, MedAIClassifyLogic
    init_headless()
    table, saliency = MedAIClassifyLogic().classify(volumeNode, model="image-type", saliency=True)
"""

from __future__ import annotations

import logging
from typing import Union

import numpy as np
import slicer
import vtk

from medai.models import ModelCard, get_card, list_cards
from medai.slicer.provenance import mark_model_output
from medai.slicer.headless import init_headless
from medai.slicer.volume_nodes import node_from_volume, volume_from_node
from medai.volume import Volume

#: Colour of the saliency overlay (a PET heat scale: exists in Slicer and in slicer-core's default colours).
SALIENCY_COLORS = "vtkMRMLPETProceduralColorNodePET-Heat"
#: Saliency below this (of 0..1) is transparent in the slice views, so the image shows through.
SALIENCY_THRESHOLD = 0.2


class MedAIClassifyLogic:
    """Classification with MedAI model cards on MRML nodes. Networks stay loaded between calls."""

    def __init__(self) -> None:
        self._classifiers: dict[tuple[str, str, str], object] = {}
        #: Warnings of the last run (e.g. an image that looks like CT given to an MR model).
        self.last_warnings: list[str] = []
        #: The last :class:`medai.pipeline.classify.ClassificationResult`.
        self.last_result = None

    @staticmethod
    def models() -> list[ModelCard]:
        """Classification model cards in the catalog (built-in and the user's)."""
        return [card for card in list_cards() if card.task == "classification"]

    def classify(self, volume_node, model: Union[str, ModelCard] = "image-type", saliency: bool = False,
                 device: str = "auto", engine: str = "auto", mask_node=None):
        """Classify ``volume_node``; returns (table node: class, probability, best first; saliency node or None).

        The saliency node is a scalar volume on the input node's own geometry, under the same parent transform,
        shown with a heat colour scale (transparent below :data:`SALIENCY_THRESHOLD`) ready to overlay as the
        foreground of the slice views. ``mask_node`` (a label map or scalar volume node on any grid) is the segment
        that image-feature models classify.
        """
        from medai.pipeline.classify import Classifier

        card = model if isinstance(model, ModelCard) else get_card(model)
        key = (card.id if card.folder is None else str(card.folder / card.id), device, engine)
        if key not in self._classifiers:
            self._classifiers[key] = Classifier(card, device, engine)
        mask = volume_from_node(mask_node) if mask_node is not None else None
        result = self._classifiers[key](volume_from_node(volume_node), saliency=saliency, mask=mask,
                                        source=volume_node.GetName())
        self.last_result = result
        self.last_warnings = list(result.warnings)
        for warning in result.warnings:
            logging.warning("MedAIClassify: %s: %s", volume_node.GetName(), warning)
        table = self.table_node(result.probabilities, volume_node, card)
        saliency_node = None if result.saliency is None else self.saliency_node(result.saliency, volume_node, card)
        return table, saliency_node

    @staticmethod
    def table_node(probabilities: dict[str, float], volume_node, card: ModelCard):
        """A table node with columns ``class`` and ``probability``, one row per class, best first."""
        scene = volume_node.GetScene() or init_headless()
        table = scene.AddNewNodeByClass("vtkMRMLTableNode", _unique_name(scene, f"{volume_node.GetName()} {card.id}"))
        names, values = vtk.vtkStringArray(), vtk.vtkDoubleArray()
        names.SetName("class")
        values.SetName("probability")
        for name, p in sorted(probabilities.items(), key=lambda kv: -kv[1]):
            names.InsertNextValue(name)
            values.InsertNextValue(float(p))
        table.AddColumn(names)
        table.AddColumn(values)
        table.SetColumnDescription("probability", f"probability of the class (0..1) by model '{card.id}'")
        mark_model_output(table, card)
        return table

    @staticmethod
    def saliency_node(saliency: Volume, volume_node, card: ModelCard):
        """A heat-coloured scalar volume node holding ``saliency`` (on ``volume_node``'s grid) on the node's geometry.

        ``saliency`` is on the node's world grid (a parent transform hardened in); the new node gets the voxels on
        the node's own IJKToRAS and the same parent transform, so it follows the image when the transform changes.
        """
        matrix = vtk.vtkMatrix4x4()
        volume_node.GetIJKToRASMatrix(matrix)
        local = Volume.from_ijk_to_ras(saliency.array, slicer.util.arrayFromVTKMatrix(matrix))
        scene = volume_node.GetScene() or init_headless()
        label = saliency.metadata.get("saliency_of", "")
        node = node_from_volume(local, _unique_name(scene, f"{volume_node.GetName()} saliency {label}".strip()), scene)
        node.SetAndObserveTransformNodeID(volume_node.GetTransformNodeID())
        display = node.GetDisplayNode()
        display.SetAndObserveColorNodeID(SALIENCY_COLORS)
        display.AutoWindowLevelOff()
        display.SetWindowLevelMinMax(0.0, 1.0)
        display.SetApplyThreshold(True)
        display.SetLowerThreshold(SALIENCY_THRESHOLD)
        display.SetUpperThreshold(float(np.max(saliency.array)) + 1.0)
        mark_model_output(node, card)
        return node


def _unique_name(scene, name: str) -> str:
    return scene.GenerateUniqueName(name) if scene.GetFirstNodeByName(name) else name


__all__ = ["MedAIClassifyLogic"]
