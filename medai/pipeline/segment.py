"""The segmentation pipeline: a volume in, a label map on the volume's exact grid out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.labels import SegmentLabel
from medai.models.card import ModelCard
from medai.progress import ProgressCallback, StageTimer
from medai.volume import Volume

#: Rough share of a case's time per stage, so progress moves at a believable pace.
STAGE_START = {"checks": 0.0, "preprocess": 0.02, "localise": 0.08, "segment": 0.15, "postprocess": 0.9, "done": 1.0}

#: ``check(volume, card) -> warnings``: a judgement of the image beyond :func:`check_input` (e.g. its modality).
InputCheck = Callable[[Volume, ModelCard], list[str]]


@dataclass
class SegmentationResult:
    """A label map on the input's grid, what its values mean, warnings and per-stage seconds."""

    label_map: Volume
    labels: list[SegmentLabel]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Segmenter:
    """Runs one model card; networks are loaded (after their SHA256 check) on first use and kept."""

    def __init__(self, card: Union[ModelCard, str], device: str = "auto", engine: str = "auto",
                 precision: str = "fp32", modality_check: Optional[InputCheck] = None) -> None:
        """``engine``: torch, onnx, openvino or auto; ``precision``: fp32 or reduced (see medai.runtime.engines);
        ``modality_check``: an extra check whose warnings join the result's (e.g.
        :class:`medai.pipeline.modality_check.ImageTypeCheck`); none by default."""
        from medai.models import get_card

        self.card = get_card(card) if isinstance(card, str) else card
        if self.card.task != "segmentation":
            raise MedAIError(f"model '{self.card.id}' is a {self.card.task} model, not a segmentation model")
        self.device_request = device
        self.engine_request, self.precision = engine, precision
        self.modality_check = modality_check
        self._networks: Optional[dict] = None
        self.device = "cpu"
        self.engine = engine

    def load(self) -> dict:
        """Verify and load the card's networks (once)."""
        if self._networks is None:
            from medai.runtime.engines import engine_and_device, load_network

            self.engine, self.device = engine_and_device(self.engine_request, self.device_request,
                                                         self.card.data.get("runtime", "torchscript"),
                                                         self.card.inference.get("mode"))
            self._networks = {role: load_network(self.card, role, self.engine, self.device, self.precision)
                              for role in self.card.weights}
        return self._networks

    def __call__(self, volume: Union[Volume, Sequence[Volume]], progress: Optional[ProgressCallback] = None,
                 source: Union[None, PathLike, Sequence[Optional[PathLike]]] = None) -> SegmentationResult:
        """Segment one case: ``volume``, or one volume per channel of the card (the first is the case's grid; see
        :mod:`medai.pipeline.channels`). ``progress(stage, fraction)`` is called as each stage begins; ``source``
        names the file (or one per channel) for messages."""
        from medai.pipeline.channels import align_channels, case_volumes, require_channel_count
        from medai.pipeline.checks import check_input
        from medai.pipeline.deoblique import axis_aligned_grid, is_oblique, scores_to_grid
        from medai.pipeline.inference import MODES
        from medai.pipeline.orientation import canonical_reorientation, spacing_in_voxel_axes
        from medai.pipeline.postprocess import scores_to_labels
        from medai.resample import grid_like, resample_to_grid

        card = self.card
        timer = StageTimer(progress, STAGE_START)

        timer.begin("checks")
        volumes = case_volumes(volume)
        sources = list(source) if isinstance(source, (list, tuple)) else [source] * len(volumes)
        require_channel_count(volumes, card, sources[0])
        warnings: list[str] = []
        for channel, image_volume, image_source in zip(card.channels, volumes, sources):
            warnings += check_input(image_volume, card, image_source, channel["modality"])
            if self.modality_check is not None and channel["modality"] == card.modality:
                warnings += self.modality_check(image_volume, card)
        channels = align_channels(volumes, card, sources)
        warnings += channels.warnings
        volume = channels.grid
        networks = self.load()

        timer.begin("preprocess")
        work = [v.with_array(np.nan_to_num(v.array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0))
                for v in channels.volumes]
        deoblique = bool(card.preprocessing.get("deoblique")) and is_oblique(volume)
        if deoblique:
            target = axis_aligned_grid(work[0])
            work = [resample_to_grid(w, target, "linear") for w in work]
        orientation = card.preprocessing.get("orientation", "none")
        spacing = card.preprocessing.get("spacing")
        if spacing is not None:
            # the network's voxel size; scores go back to the input grid linearly, labels are made there
            axes = spacing_in_voxel_axes(work[0], spacing, "LPS" if orientation == "LPS" else "RAS")
            target = grid_like(work[0], spacing=axes)
            work = [resample_to_grid(w, target, "linear") for w in work]
        resampled = deoblique or spacing is not None
        reorientation = canonical_reorientation(work[0], orientation) if orientation != "none" else None
        arrays = [w.array.transpose(2, 1, 0) for w in work]
        image = arrays[0][None] if len(arrays) == 1 else np.stack(arrays)  # (channels, I, J, K); one: a view
        if reorientation is not None:
            image = reorientation.apply(image)

        intensity = card.preprocessing.get("intensity", {"type": "none"})
        scores = MODES[card.inference["mode"]](image, networks, card.inference, intensity, timer.begin)

        timer.begin("postprocess")
        foreground = card.inference.get("foreground_channel", 1)
        label_values = [label.value for label in card.labels]
        if resampled:
            # scores back onto the input grid (linearly), then labels there
            if reorientation is not None:
                scores = reorientation.invert(scores)
            scores = scores_to_grid(scores, work[0], volume, background_channel=0 if foreground != 0 else None)
            labels = scores_to_labels(scores, card.postprocessing, label_values, foreground)
        else:
            labels = scores_to_labels(scores, card.postprocessing, label_values, foreground)
            if reorientation is not None:
                labels = reorientation.invert(labels)
        label_map = volume.with_array(np.ascontiguousarray(labels.transpose(2, 1, 0)))
        label_map.metadata = {"model": card.id, "model_version": card.version}
        timer.begin("done")
        return SegmentationResult(label_map, list(card.labels), warnings, timer.seconds)


def segment_volume(volume: Union[Volume, Sequence[Volume]], model: Union[ModelCard, str] = "brain-extraction",
                   device: str = "auto",
                   progress: Optional[ProgressCallback] = None, engine: str = "auto",
                   modality_check: Optional[InputCheck] = None) -> SegmentationResult:
    """Segment one case (a volume, or one per channel) with ``model`` (an id, a card path or a card); see
    :class:`Segmenter`."""
    return Segmenter(model, device, engine, modality_check=modality_check)(volume, progress)
