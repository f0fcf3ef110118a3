"""Which model made a node: the node attributes MedAI's logics set on their results and the DICOM exports read."""

from __future__ import annotations

from typing import Optional

from medai.models.card import ModelCard

#: Node attributes naming the model that made a segmentation, table or saliency node.
MODEL_ATTRIBUTE = "MedAI.Model"
MODEL_VERSION_ATTRIBUTE = "MedAI.ModelVersion"


def mark_model_output(node, card: ModelCard) -> None:
    """Record on ``node`` that ``card``'s model made it."""
    node.SetAttribute(MODEL_ATTRIBUTE, card.name)
    node.SetAttribute(MODEL_VERSION_ATTRIBUTE, card.version)


def model_of(node) -> Optional[tuple[str, str]]:
    """(name, version) of the model that made ``node``, or None when no MedAI model made it."""
    name = node.GetAttribute(MODEL_ATTRIBUTE)
    return (name, node.GetAttribute(MODEL_VERSION_ATTRIBUTE) or "") if name else None
