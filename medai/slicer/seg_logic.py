"""MedAISeg's logic: segment a volume node with a model card, in-process (console) or from a run's output file.

The Slicer module's Logic is this class, so the GUI, the Python console and the tests run the same code::

    from medai.slicer import init_headless, MedAISegLogic
    init_headless()
    seg = MedAISegLogic().segment(volumeNode, model="brain-extraction")
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional, Union


from medai.errors import PathLike
from medai.labels import SegmentLabel
from medai.models import ModelCard, get_card, list_cards
from medai.slicer.headless import init_headless
from medai.slicer.provenance import mark_model_output
from medai.slicer.segmentation_nodes import segmentation_node_from_labels
from medai.slicer.volume_nodes import load_volume_node, volume_from_node
from medai.volume import Volume

ProgressCallback = Callable[[str, float], None]


class MedAISegLogic:
    """Segmentation with MedAI model cards on MRML nodes. Networks stay loaded between calls."""

    def __init__(self) -> None:
        self._segmenters: dict[tuple[str, str, str], object] = {}
        #: Warnings of the last run (e.g. an image that looks like CT given to an MR model).
        self.last_warnings: list[str] = []

    @staticmethod
    def models() -> list[ModelCard]:
        """Segmentation model cards in the catalog: built-in ones and the user's installed packages and bundles."""
        return [card for card in list_cards() if card.task == "segmentation"]

    @staticmethod
    def channel_names(model: Union[str, ModelCard]) -> list[str]:
        """The names of the volumes ``model`` takes per case, in order (one name for most models)."""
        card = model if isinstance(model, ModelCard) else get_card(model)
        return [channel["name"] for channel in card.channels]

    @staticmethod
    def install_model(path: PathLike, model_id: Optional[str] = None, force: bool = False) -> ModelCard:
        """Install a model package or MONAI bundle (folder, zip, or its card.json / configs/metadata.json) for
        :meth:`models`; returns the installed card (see ``medai models install``)."""
        from medai.models.install import install_model

        return install_model(path, model_id, force)

    def segment(self, volume_node, model: Union[str, ModelCard] = "brain-extraction", device: str = "auto",
                closed_surface: bool = False, progress: Optional[ProgressCallback] = None, engine: str = "auto",
                statistics: bool = False):
        """Segment ``volume_node`` in this process; returns a new segmentation node on the volume's grid.

        ``statistics``: also make a table node of each segment's volume and intensities
        (:func:`medai.slicer.statistics.segment_statistics_table`), referenced by the segmentation node as
        ``MedAI.Statistics``.

        For a model that takes several volumes per case, ``volume_node`` is a list of volume nodes, one per channel
        in the card's order (``card.channels``); the first sets the grid and names the result, the others are
        aligned to it in physical space (their parent transforms applied).
        ``engine``: torch, onnx, openvino or auto (see medai.runtime.engines)."""
        from medai.pipeline import Segmenter
        from medai.pipeline.modality_check import image_type_check

        card = model if isinstance(model, ModelCard) else get_card(model)
        key = (card.id if card.folder is None else str(card.folder / card.id), device, engine)
        if key not in self._segmenters:
            self._segmenters[key] = Segmenter(card, device, engine, modality_check=image_type_check())
        nodes = list(volume_node) if isinstance(volume_node, (list, tuple)) else [volume_node]
        result = self._segmenters[key]([volume_from_node(node) for node in nodes], progress=progress,
                                       source=[node.GetName() for node in nodes])
        self._report(result.warnings, nodes[0])
        node = self.segmentation_node(result.label_map, result.labels, nodes[0], card, closed_surface)
        if statistics:
            from medai.slicer.statistics import segment_statistics_table

            segment_statistics_table(node, nodes[0])
        return node

    def segment_file(self, path: PathLike, model: Union[str, ModelCard] = "brain-extraction", device: str = "auto",
                     closed_surface: bool = False):
        """Load an image file or DICOM folder as a volume node and segment it; returns (volume node, segmentation node)."""
        volume_node = load_volume_node(path)
        return volume_node, self.segment(volume_node, model, device, closed_surface)

    def segmentation_from_file(self, path: PathLike, volume_node, model: Union[str, ModelCard],
                               closed_surface: bool = False):
        """A segmentation node from a ``.seg.nrrd`` that a ``medai segment`` run wrote for ``volume_node``."""
        from medai.io.seg_nrrd import read_seg_nrrd

        card = model if isinstance(model, ModelCard) else get_card(model)
        label_map, labels = read_seg_nrrd(Path(path))
        return self.segmentation_node(label_map, labels, volume_node, card, closed_surface)

    @staticmethod
    def segmentation_node(label_map: Volume, labels: list[SegmentLabel], volume_node, card: ModelCard,
                          closed_surface: bool = False):
        """The segmentation node for a label map on ``volume_node``'s grid, named after the input and model."""
        name = f"{volume_node.GetName()} {card.id}"
        scene = volume_node.GetScene() or init_headless()
        name = scene.GenerateUniqueName(name) if scene.GetFirstNodeByName(name) else name
        node = segmentation_node_from_labels(label_map, labels, volume_node, name=name, closed_surface=closed_surface)
        mark_model_output(node, card)
        return node

    def _report(self, warnings: list[str], volume_node) -> None:
        self.last_warnings = list(warnings)
        for warning in warnings:
            logging.warning("MedAISeg: %s: %s", volume_node.GetName(), warning)


__all__ = ["MedAISegLogic"]
