"""Feature-extraction settings, named as pyradiomics names them so a card or a baseline can carry them as is."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from medai.errors import MedAIError


@dataclass(frozen=True)
class FeatureSettings:
    """pyradiomics' defaults: fixed bin width 25, no shift, mask label 1, GLCM at distance 1 (13 directions).

    ``binCount`` (fixed bin number) replaces ``binWidth`` when given. ``voxelArrayShift`` is added to the
    intensities for Energy, TotalEnergy and RootMeanSquared only (pyradiomics' baseline uses 2000).
    """

    binWidth: float = 25.0
    binCount: Optional[int] = None
    voxelArrayShift: float = 0.0
    label: int = 1
    distances: tuple[int, ...] = field(default=(1,))

    def __post_init__(self) -> None:
        if self.binCount is None and not self.binWidth > 0:
            raise MedAIError(f"binWidth must be positive; got {self.binWidth}")
        if self.binCount is not None and self.binCount < 1:
            raise MedAIError(f"binCount must be at least 1; got {self.binCount}")
        if not self.distances or min(self.distances) < 1:
            raise MedAIError(f"GLCM distances must be integers >= 1; got {list(self.distances)}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (pyradiomics' keys); ``binCount`` only when set."""
        data = asdict(self)
        data["distances"] = list(self.distances)
        if self.binCount is None:
            del data["binCount"]
        return data

    @classmethod
    def from_dict(cls, data: Optional[Mapping[str, Any]]) -> "FeatureSettings":
        """Settings from pyradiomics-style keys; keys that do not change these features' values are refused."""
        data = dict(data or {})
        known = {"binWidth", "binCount", "voxelArrayShift", "label", "distances"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MedAIError(f"unsupported feature settings: {', '.join(unknown)} (supported: {', '.join(sorted(known))})")
        if "distances" in data:
            data["distances"] = tuple(int(d) for d in data["distances"])
        return cls(**data)
