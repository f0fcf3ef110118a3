"""Several input volumes per case (channels): checked against the card and brought onto one grid.

A model may take several volumes of one case (T1, T2, FLAIR; CT phases; ...), declared in the card's
``input.channels``. The first volume's grid is the case's grid: every other volume is resampled onto it in
physical (LPS) space, linearly, and the label map lands on it. Volumes already on that grid are passed on
untouched. Voxel counts never decide alignment: a T2 of 256x256x30 and a T1 of 176x256x256 line up by their
positions in millimetres. A channel that covers too little of the first one's extent is refused; one that covers
most but not all of it is accepted with a warning (the uncovered voxels are 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.models.card import ModelCard
from medai.volume import Volume

#: Share of the first volume's voxel centres another channel must cover to be used, and to be used silently.
REFUSED_BELOW = 0.5
WARNED_BELOW = 0.99


@dataclass
class Channels:
    """The volumes of one case on the first one's grid, in the card's channel order, and what aligning them found."""

    volumes: list[Volume]
    names: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def grid(self) -> Volume:
        """The case's grid: the first channel."""
        return self.volumes[0]


def case_volumes(inputs: Union[Volume, Sequence[Volume]]) -> list[Volume]:
    """One volume or several as a list."""
    return [inputs] if isinstance(inputs, Volume) else list(inputs)


def require_channel_count(volumes: Sequence[Volume], card: ModelCard, source: Optional[PathLike] = None) -> None:
    """Refuse a case that does not hold one volume per channel of ``card``."""
    names = [channel["name"] for channel in card.channels]
    if len(volumes) != len(names):
        raise MedAIError(f"model '{card.id}' takes {len(names)} image{'s' if len(names) > 1 else ''} per case "
                         f"({', '.join(names)}); got {len(volumes)}", source)


def align_channels(inputs: Union[Volume, Sequence[Volume]], card: ModelCard,
                   sources: Optional[Sequence[Optional[PathLike]]] = None) -> Channels:
    """``inputs`` (one volume per channel of ``card``) on the first one's grid; refuses a wrong count.

    ``sources`` names the files the volumes came from, for the messages.
    """
    from medai.resample import resample_to_grid

    volumes = case_volumes(inputs)
    names = [channel["name"] for channel in card.channels]
    sources = list(sources) if sources is not None else [None] * len(volumes)
    require_channel_count(volumes, card, sources[0])
    reference = volumes[0]
    aligned, warnings = [reference], []
    for volume, name, source in zip(volumes[1:], names[1:], sources[1:]):
        if volume.same_grid(reference):
            aligned.append(volume)
            continue
        covered = coverage(volume, reference)
        if covered < REFUSED_BELOW:
            raise MedAIError(f"channel '{name}' covers only {covered:.0%} of channel '{names[0]}' in physical "
                             f"space; are they images of the same case?", source)
        if covered < WARNED_BELOW:
            warnings.append(f"channel '{name}' covers {covered:.1%} of channel '{names[0]}'; the rest is 0")
        warnings += _frame_warning(volume, reference, name, names[0])
        moved = resample_to_grid(volume.with_array(volume.array.astype(np.float32, copy=False)), reference, "linear")
        aligned.append(moved)
    return Channels(aligned, names, warnings)


def coverage(volume: Volume, reference: Volume) -> float:
    """Share of ``reference``'s voxel centres (sampled on a coarse lattice) that lie inside ``volume``'s extent."""
    steps = [np.linspace(0, n - 1, min(n, 24)) for n in reference.size_ijk]
    ijk = np.stack(np.meshgrid(*steps, indexing="ij"), -1).reshape(-1, 3)
    inside = volume.ijk_indices(reference.lps_points(ijk))
    size = np.array(volume.size_ijk)
    within = np.all((inside >= -0.5) & (inside <= size - 0.5), axis=1)
    return float(within.mean())


def _frame_warning(volume: Volume, reference: Volume, name: str, first: str) -> list[str]:
    """A warning when both volumes come from DICOM with different frames of reference."""
    frames = [v.metadata.get("dicom", {}).get("FrameOfReferenceUID") for v in (volume, reference)]
    if all(frames) and frames[0] != frames[1]:
        return [f"channel '{name}' has another DICOM frame of reference than '{first}': they are aligned by their "
                f"coordinates alone, which is right only if the scanner kept the patient still between them"]
    return []
