"""The classification pipeline: an image in, class probabilities (and optionally a saliency map) out.

A card's ``inference.mode`` says how:

* ``whole`` with a 2D network (``input_size`` Z = 1): up to :data:`SLICES` slices of the canonical image
  (:mod:`medai.pipeline.classify_input`; the single slice of a 2D image) are each resized and normalised; the
  class probabilities of the image are the mean of the slices' probabilities;
* ``whole`` with a 3D network: the whole canonical image, resized to ``input_size``;
* ``features``: a classic classifier on image features of a segment (:mod:`medai.pipeline.classify_features`);
  it needs a mask.

The network output goes through the card's ``inference.output`` (``softmax`` or ``sigmoid``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.models.card import ModelCard
from medai.progress import ProgressCallback, StageTimer
from medai.volume import Volume

#: Slices a 2D network sees of a volume (evenly spaced over the middle of its slice axis).
SLICES = 16
#: Modalities a class name may start with ("CT_head" is CT): how image-type classes group into modalities.
MODALITIES = ("CT", "MR", "CR", "DX", "US", "PT")

STAGE_START = {"checks": 0.0, "preprocess": 0.05, "classify": 0.15, "saliency": 0.5, "done": 1.0}


@dataclass
class ClassificationResult:
    """Class probabilities (best first), the top class, an optional saliency map on the input's grid."""

    probabilities: dict[str, float]
    label: str
    saliency: Optional[Volume] = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Classifier:
    """Runs one classification card; the network is loaded (after its SHA256 check) on first use and kept."""

    def __init__(self, card: Union[ModelCard, str], device: str = "auto", engine: str = "auto") -> None:
        from medai.models import get_card

        self.card = get_card(card) if isinstance(card, str) else card
        if self.card.task != "classification":
            raise MedAIError(f"model '{self.card.id}' is a {self.card.task} model, not a classification model")
        self.classes: list[str] = list(self.card.data.get("classes", []))
        if not self.classes:
            raise MedAIError(f"invalid model card: classification model '{self.card.id}' lists no classes")
        self.device_request, self.engine_request = device, engine
        self._network = None
        self.device = "cpu"

    @property
    def input_size(self) -> list[int]:
        return [int(s) for s in self.card.inference.get("input_size", [])]

    @property
    def two_d(self) -> bool:
        """True for a 2D network (input_size Z = 1), which sees slices."""
        return len(self.input_size) == 3 and self.input_size[2] == 1

    def load(self):
        """Verify and load the card's classifier network (once)."""
        if self._network is None:
            from medai.runtime.engines import engine_and_device, load_network

            engine, self.device = engine_and_device(self.engine_request, self.device_request,
                                                    self.card.data.get("runtime", "torchscript"),
                                                    self.card.inference.get("mode"))
            self._network = load_network(self.card, "classifier", engine, self.device)
        return self._network

    def __call__(self, volume: Volume, saliency: bool = False, mask: Optional[Volume] = None,
                 source: Optional[PathLike] = None, progress: Optional[ProgressCallback] = None) -> ClassificationResult:
        """Classify ``volume``; ``saliency`` adds a map (0..1) of where the model looked, on ``volume``'s grid."""
        from medai.pipeline.checks import check_input

        timer = StageTimer(progress, STAGE_START)
        timer.begin("checks")
        warnings = check_input(volume, self.card, source)
        mode = self.card.inference["mode"]
        if mode == "features":
            scores = self._features(volume, mask, source)
            if saliency:
                warnings.append(f"model '{self.card.id}' classifies image features: it has no saliency map")
            saliency = False
        elif mode == "whole":
            if mask is not None:
                warnings.append(f"model '{self.card.id}' classifies the whole image; the mask is not used")
            scores = self._whole(volume, timer)
        else:
            raise MedAIError(f"model '{self.card.id}': inference mode '{mode}' is not a classification mode")
        probabilities = dict(sorted(zip(self.classes, (float(p) for p in scores)), key=lambda kv: -kv[1]))
        label = next(iter(probabilities))
        saliency_map = None
        if saliency:
            timer.begin("saliency")
            saliency_map = self.saliency(volume, self.classes.index(label))
        timer.begin("done")
        return ClassificationResult(probabilities, label, saliency_map, warnings, timer.seconds)

    def _features(self, volume: Volume, mask: Optional[Volume], source: Optional[PathLike]) -> np.ndarray:
        if mask is None:
            raise MedAIError(f"model '{self.card.id}' classifies a segment from its image features: give a mask "
                             f"(the segment) with the image", source)
        from medai.pipeline.classify_features import feature_probabilities

        found = feature_probabilities(self.card, volume, mask)
        return np.array([found[name] for name in self.classes])

    def _whole(self, volume: Volume, timer) -> np.ndarray:
        from medai.pipeline.classify_input import canonical_image, slice_batch, volume_batch

        network = self.load()
        timer.begin("preprocess")
        image = canonical_image(volume, self.card.preprocessing.get("orientation", "RAS"))
        intensity = self.card.preprocessing.get("intensity", {"type": "none"})
        if self.two_d:
            batch = slice_batch(image.slices(image.slice_indices(SLICES)), self.input_size, intensity)
        else:
            batch = volume_batch(image.whole(), self.input_size, intensity)
        timer.begin("classify")
        scores = output_scores(network(batch), self.card.inference.get("output", "softmax"))
        return scores.mean(0).cpu().numpy()

    def saliency(self, volume: Volume, class_index: int) -> Volume:
        """Where the network looked for class ``class_index``: a 0..1 map on ``volume``'s exact grid."""
        from medai.pipeline.saliency import saliency_map

        return saliency_map(self, volume, class_index)


def output_scores(output, kind: str):
    """A (N, classes) network output -> probabilities per the card's ``inference.output``."""
    if kind == "softmax":
        return output.float().softmax(1)
    if kind == "sigmoid":
        return output.float().sigmoid()
    if kind == "probability":
        return output.float()
    raise MedAIError(f"inference output '{kind}' gives no class probabilities; use softmax or sigmoid")


def modality_probabilities(probabilities: dict[str, float]) -> dict[str, float]:
    """Class probabilities summed by the modality a class name starts with (``CT_head`` + ``CT_body`` -> ``CT``).

    Classes that do not start with a modality of :data:`MODALITIES` are left out.
    """
    out: dict[str, float] = {}
    for name, p in probabilities.items():
        head = name.replace("-", "_").replace(" ", "_").split("_")[0]
        if head in MODALITIES:
            out[head] = out.get(head, 0.0) + p
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def classify_volume(volume: Volume, model: Union[ModelCard, str] = "image-type", saliency: bool = False,
                    device: str = "auto", engine: str = "auto") -> ClassificationResult:
    """Classify one volume with ``model`` (an id, a card path or a card); see :class:`Classifier`."""
    return Classifier(model, device, engine)(volume, saliency=saliency)
