"""The options of one training run and of the package it writes (recorded in the package's training.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from medai.errors import MedAIError

INTENSITY_TYPES = ("quantile-zscore", "zscore", "range", "none")


@dataclass
class TrainConfig:
    """Everything that decides what a run learns. Defaults suit a CPU; the CLI documents each option."""

    task: str
    data: Path
    output: Path
    network: str
    epochs: int = 10
    batch_size: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    device: str = "auto"
    validation_fraction: float = 0.2
    intensity: dict[str, Any] = field(default_factory=lambda: {"type": "zscore"})
    width: Optional[int] = None  # feature maps at full resolution (segmentation: 16; classification: per network)
    # segmentation
    roi: tuple[int, int, int] = (64, 64, 64)
    spacing: Optional[tuple[float, float, float]] = None
    samples_per_case: int = 4
    overlap: float = 0.25
    # classification
    dims: int = 3
    input_size: Optional[tuple[int, ...]] = None
    size: Optional[str] = None
    class_weights: bool = True

    def check(self) -> None:
        """Refuse impossible values with one line each."""
        for name in ("epochs", "batch_size", "samples_per_case"):
            if getattr(self, name) < 1:
                raise MedAIError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(self, name)}")
        if self.lr <= 0:
            raise MedAIError(f"--lr must be positive; got {self.lr}")
        if self.spacing is not None and any(s <= 0 for s in self.spacing):
            raise MedAIError(f"--spacing must be positive millimetres; got {list(self.spacing)}")
        if any(r < 1 for r in self.roi):
            raise MedAIError(f"--roi must be positive voxel counts; got {list(self.roi)}")
        if self.intensity.get("type") not in INTENSITY_TYPES:
            raise MedAIError(f"unknown --intensity {self.intensity.get('type')!r}; "
                             f"use one of {', '.join(INTENSITY_TYPES)}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in data.items()}


@dataclass
class PackageInfo:
    """What the package's card says about the model beyond what training decides."""

    id: str
    name: str
    version: str = "1.0.0"
    description: str = ""
    license: str = "unspecified"
    source: str = ""
    modality: str = "any"
    body_part: Optional[str] = None
    sequence: Optional[str] = None
    #: segmentation labels as card entries ({value, name, color, terminology}); filled from the data if empty
    labels: list[dict[str, Any]] = field(default_factory=list)


def intensity_spec(kind: str, lower: float = 0.005, upper: float = 0.995,
                   window: Optional[tuple[float, float, float, float]] = None) -> dict[str, Any]:
    """The card's ``preprocessing.intensity`` for ``--intensity`` (see :func:`medai.pipeline.intensity.normalize`)."""
    if kind == "quantile-zscore":
        return {"type": kind, "lower": lower, "upper": upper}
    if kind == "range":
        if window is None:
            raise MedAIError("--intensity range needs --intensity-range A_MIN A_MAX B_MIN B_MAX (e.g. -1000 1000 0 1)")
        a_min, a_max, b_min, b_max = window
        if a_max <= a_min or b_max <= b_min:
            raise MedAIError(f"--intensity-range needs A_MIN < A_MAX and B_MIN < B_MAX; got {list(window)}")
        return {"type": kind, "a_min": a_min, "a_max": a_max, "b_min": b_min, "b_max": b_max, "clip": True}
    if kind in ("zscore", "none"):
        return {"type": kind}
    raise MedAIError(f"unknown --intensity {kind!r}; use one of {', '.join(INTENSITY_TYPES)}")
