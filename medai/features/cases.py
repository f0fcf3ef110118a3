"""Cases for feature extraction: (image, mask) pairs from the command line or a feature datalist JSON.

A feature datalist: ``{"classes": ["a", "b"], "training": [{"image": ..., "mask": ..., "label": "a"}],
"validation": [...]}`` with paths relative to the JSON's folder. An entry may name the mask value of its
segment with ``"mask_label": N`` (one label map holding many segments); otherwise the settings' label is used.
``label`` (the class) is needed only for training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from medai.errors import MedAIError, PathLike
from medai.features.extract import extract_features
from medai.features.settings import FeatureSettings
from medai.io.json_file import read_json


@dataclass(frozen=True)
class FeatureCase:
    """One segment to describe: an image, its mask, the mask value (None: the settings' label), its class."""

    image: Path
    mask: Path
    mask_label: Optional[int] = None
    label: Optional[str] = None

    @property
    def name(self) -> str:
        """How the case is named in tables and messages: the image, plus the mask when it says which segment."""
        suffix = f"#{self.mask_label}" if self.mask_label is not None else ""
        return f"{self.image.name}:{self.mask.name}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"image": str(self.image), "mask": str(self.mask)}
        if self.mask_label is not None:
            data["mask_label"] = self.mask_label
        if self.label is not None:
            data["label"] = self.label
        return data


@dataclass(frozen=True)
class FeatureDatalist:
    """The cases of a feature datalist and its class names (in classifier output order)."""

    source: Path
    classes: list[str]
    training: list[FeatureCase]
    validation: list[FeatureCase]


def read_feature_datalist(path: PathLike, need_labels: bool = True) -> FeatureDatalist:
    """Read a feature datalist; every problem is a one-line error naming the JSON."""
    source = Path(path)
    data = read_json(source, "datalist")
    if not isinstance(data, dict) or not isinstance(data.get("training"), list) or not data["training"]:
        raise MedAIError('a feature datalist needs a non-empty "training" list', source)
    lists = {key: [_case(entry, source, key, index, need_labels) for index, entry in enumerate(data.get(key) or [])]
             for key in ("training", "validation")}
    names = sorted({case.label for cases in lists.values() for case in cases if case.label is not None})
    classes = [str(c) for c in data.get("classes") or names]
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise MedAIError(f"labels {unknown} are not in the datalist's classes {classes}", source)
    if need_labels and len({case.label for case in lists["training"]}) < 2:
        raise MedAIError("training needs cases of at least two classes", source)
    return FeatureDatalist(source, classes, lists["training"], lists["validation"])


def _case(entry: Any, source: Path, key: str, index: int, need_labels: bool) -> FeatureCase:
    where = f"{key}[{index}]"
    if not isinstance(entry, dict) or "image" not in entry or "mask" not in entry:
        raise MedAIError(f'{where} needs "image" and "mask"', source)
    if need_labels and "label" not in entry:
        raise MedAIError(f'{where} has no "label" (its class)', source)
    mask_label = entry.get("mask_label")
    if mask_label is not None and (not isinstance(mask_label, int) or isinstance(mask_label, bool)):
        raise MedAIError(f"{where}: mask_label must be an integer", source)
    folder = source.parent
    return FeatureCase(image=folder / entry["image"], mask=folder / entry["mask"], mask_label=mask_label,
                       label=None if entry.get("label") is None else str(entry["label"]))


class VolumeCache:
    """Reads each file once while a batch describes many segments of the same image and label map."""

    def __init__(self) -> None:
        self._volumes: dict[Path, Any] = {}

    def read(self, path: Path):
        from medai.io import read_volume

        if path not in self._volumes:
            self._volumes[path] = read_volume(path)
        return self._volumes[path]


def case_features(case: FeatureCase, settings: FeatureSettings, cache: Optional[VolumeCache] = None) -> dict[str, float]:
    """The features of one case; a problem with its files is a one-line error naming the file at fault."""
    from dataclasses import replace

    cache = cache or VolumeCache()
    image = cache.read(case.image)
    mask = cache.read(case.mask)
    if case.mask_label is not None:
        settings = replace(settings, label=case.mask_label)
    try:
        return extract_features(image, mask, settings)
    except MedAIError as error:
        raise MedAIError(error.problem, case.mask) from None
