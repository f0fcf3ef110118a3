"""The modality check: the built-in ``image-type`` model judges an image's modality before another model runs.

A warning, never a failure, when the judged modality (CT, MR, ...) is not the one the card expects. The
segmentation pipeline does not import this module: its callers (the CLI, the Slicer logic) hand it an
:class:`ImageTypeCheck`, so the classifier behind it is loaded once and kept with them.
"""

from __future__ import annotations

from functools import lru_cache
from medai.errors import MedAIError
from medai.models.card import ModelCard
from medai.volume import Volume

#: The built-in model that tells CT from MR by the pixels (recipes/image_type).
IMAGE_TYPE_MODEL = "image-type"


class ImageTypeCheck:
    """``check(volume, card) -> warnings``; the image-type classifier is loaded on first use and kept."""

    def __init__(self) -> None:
        self._classifier = None

    def __call__(self, volume: Volume, card: ModelCard) -> list[str]:
        if card.modality not in ("CT", "MR") or card.id == IMAGE_TYPE_MODEL:
            return []
        from medai.pipeline.classify import modality_probabilities

        try:
            result = self.classifier()(volume)
        except MedAIError as error:
            return [f"the modality was not checked: {error.one_line()}"]
        modalities = modality_probabilities(result.probabilities)
        judged = next(iter(modalities))
        if judged == card.modality:
            return []
        return [f"the image-type model judges this image to be {judged} (probability {modalities[judged]:.2f}), "
                f"but model '{card.id}' expects {card.modality}"]

    def classifier(self):
        """The image-type classifier (torch on the CPU: the quickest to load)."""
        if self._classifier is None:
            from medai.pipeline.classify import Classifier

            self._classifier = Classifier(IMAGE_TYPE_MODEL, device="cpu", engine="torch")
        return self._classifier


@lru_cache(maxsize=1)
def image_type_check() -> ImageTypeCheck:
    """The process's shared :class:`ImageTypeCheck` (one classifier however many segmenters use it)."""
    return ImageTypeCheck()

