"""What to train on: a datalist JSON (Medical Segmentation Decathlon layout) or a folder, split into cases.

* Datalist JSON: ``{"labels": {"0": "background", "1": "brain"}, "training": [{"image": ..., "label": ...}],
  "validation": [...], "test": [...]}`` with paths relative to the JSON's folder. For classification ``label``
  is a class name and a top-level ``classes`` list may fix the class order (else sorted names).
* Segmentation folder: ``imagesTr/`` and ``labelsTr/`` with matching names (an nnU-Net ``_0000`` channel suffix
  on an image name is ignored).
* Classification folder: ``ROOT/<class>/<image file or DICOM folder>``.

Without a validation list, a seeded, per-class (classification) split holds out ``validation_fraction`` of the
cases. Every problem is a one-line :class:`MedAIError` naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.io.json_file import read_json

TASKS = ("segmentation", "classification")


@dataclass(frozen=True)
class Case:
    """One training example: an image path and its label (a label-map path, or a class name)."""

    image: Path
    label: Union[Path, str]

    def to_dict(self, root: Path) -> dict[str, str]:
        """The case with its paths relative to ``root``: a package records no absolute paths of the user's files."""
        def relative(value: Union[Path, str]) -> str:
            return os.path.relpath(value, root) if isinstance(value, Path) else value

        return {"image": relative(self.image), "label": relative(self.label)}


@dataclass
class Datalist:
    """Cases split into training / validation / test, plus what the labels or classes are called."""

    source: Path
    task: str
    training: list[Case]
    validation: list[Case]
    test: list[Case] = field(default_factory=list)
    #: segmentation: label value -> name (background excluded); empty when the data does not say
    label_names: dict[int, str] = field(default_factory=dict)
    #: classification: class names in network output order
    classes: list[str] = field(default_factory=list)
    split: str = "given"  # "given" (from the datalist) or "seeded"

    def to_dict(self) -> dict[str, Any]:
        """The split for training.json: the source's name and the cases' paths relative to its folder."""
        root = self.source if self.source.is_dir() else self.source.parent
        return {"source": self.source.name, "split": self.split,
                "training": [c.to_dict(root) for c in self.training],
                "validation": [c.to_dict(root) for c in self.validation],
                "test": [c.to_dict(root) for c in self.test]}


def load_datalist(source: PathLike, task: str, validation_fraction: float = 0.2, seed: int = 0) -> Datalist:
    """Read ``source`` (a datalist JSON or a folder) for ``task`` and split it; see the module docstring."""
    if task not in TASKS:
        raise MedAIError(f"unknown task '{task}'; use {' or '.join(TASKS)}")
    path = Path(source)
    if not path.exists():
        raise MedAIError("no such datalist file or folder", path)
    if path.is_dir():
        entries = _segmentation_folder(path) if task == "segmentation" else _classification_folder(path)
        data: dict[str, Any] = {"training": entries}
    else:
        data = _read_json(path)
    root = path if path.is_dir() else path.parent
    lists = {name: _cases(data, name, root, task, path) for name in ("training", "validation", "test")}
    if not lists["training"]:
        raise MedAIError("lists no training cases", path)
    names = _label_names(data, path) if task == "segmentation" else {}
    classes = _classes(data, lists, path) if task == "classification" else []
    split = "given"
    if not lists["validation"]:
        lists["training"], lists["validation"] = _split(lists["training"], task, validation_fraction, seed, path)
        split = "seeded"
    return Datalist(path, task, lists["training"], lists["validation"], lists["test"], names, classes, split)


def _read_json(path: Path) -> dict[str, Any]:
    data = read_json(path, "datalist")
    if not isinstance(data, dict):
        raise MedAIError("is not a datalist: the top level must be an object with a 'training' list", path)
    return data


def _cases(data: dict[str, Any], name: str, root: Path, task: str, origin: Path) -> list[Case]:
    entries = data.get(name, [])
    if not isinstance(entries, list):
        raise MedAIError(f"'{name}' must be a list of {{\"image\": ..., \"label\": ...}} entries", origin)
    cases = []
    for index, entry in enumerate(entries):
        where = f"{name}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
            raise MedAIError(f"entry {where} needs an 'image' path (one image per case; multi-channel lists are "
                             f"not supported)", origin)
        image = _existing(root / entry["image"], where, "image")
        label = entry.get("label")
        if task == "segmentation":
            if name != "test" or label is not None:
                if not isinstance(label, str):
                    raise MedAIError(f"entry {where} needs a 'label' path", origin)
                label = _existing(root / label, where, "label")
        elif not isinstance(label, str) or not label:
            if name != "test" or label is not None:
                raise MedAIError(f"entry {where} needs a 'label' class name", origin)
        cases.append(Case(image, label if label is not None else ""))
    return cases


def _existing(path: Path, where: str, what: str) -> Path:
    if not path.exists():
        raise MedAIError(f"{what} of datalist entry {where} does not exist", path)
    return path


def _label_names(data: dict[str, Any], origin: Path) -> dict[int, str]:
    labels = data.get("labels", {})
    if not isinstance(labels, dict):
        raise MedAIError("'labels' must map label values to names, e.g. {\"0\": \"background\", \"1\": \"brain\"}",
                         origin)
    names = {}
    for key, value in labels.items():
        try:
            number = int(key)
        except ValueError:
            raise MedAIError(f"label value '{key}' in 'labels' is not an integer", origin) from None
        if number < 0 or not isinstance(value, str) or not value:
            raise MedAIError(f"label {key} in 'labels' needs a non-negative value and a name", origin)
        if number:
            names[number] = value
    return names


def _classes(data: dict[str, Any], lists: dict[str, list[Case]], origin: Path) -> list[str]:
    seen = sorted({c.label for name in ("training", "validation") for c in lists[name]})
    classes = data.get("classes")
    if classes is None:
        classes = seen
    elif not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes) \
            or len(set(classes)) != len(classes):
        raise MedAIError("'classes' must be a list of distinct class names", origin)
    unknown = sorted(set(seen) - set(classes))
    if unknown:
        raise MedAIError(f"class '{unknown[0]}' is used by an entry but not listed in 'classes'", origin)
    if len(classes) < 2:
        raise MedAIError(f"a classifier needs at least two classes; found {classes}", origin)
    return list(classes)


def _split(cases: list[Case], task: str, fraction: float, seed: int, origin: Path) -> tuple[list[Case], list[Case]]:
    """Hold out ``fraction`` of the cases (at least one; per class for classification), reproducibly."""
    if not 0 < fraction < 1:
        raise MedAIError(f"the validation fraction must be between 0 and 1; got {fraction}")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for index, case in enumerate(cases):
        groups.setdefault(str(case.label) if task == "classification" else "", []).append(index)
    held: set[int] = set()
    for key in sorted(groups):
        members = groups[key]
        if len(members) < 2:
            raise MedAIError(f"needs at least two cases{f' of class {key!r}' if key else ''} to hold some out for "
                             f"validation; add cases or a 'validation' list", origin)
        count = max(1, int(round(fraction * len(members))))
        held.update(int(i) for i in rng.permutation(members)[:count])
    return ([c for i, c in enumerate(cases) if i not in held], [c for i, c in enumerate(cases) if i in held])


def _strip_suffixes(name: str) -> str:
    for ext in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".dcm"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.name.endswith(".raw")
                  and not p.name.endswith(".zraw"))


def _segmentation_folder(root: Path) -> list[dict[str, str]]:
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise MedAIError("a segmentation training folder needs imagesTr/ and labelsTr/ with matching names", folder)
    labels = {_strip_suffixes(p.name): p for p in _visible(labels_dir)}
    entries = []
    for image in _visible(images_dir):
        stem = _strip_suffixes(image.name)
        key = stem[:-5] if stem not in labels and stem.endswith("_0000") else stem
        if key not in labels:
            raise MedAIError(f"has no label map of the same name in {labels_dir}", image)
        entries.append({"image": str(image.relative_to(root)), "label": str(labels[key].relative_to(root))})
    return entries


def _classification_folder(root: Path) -> list[dict[str, str]]:
    classes = [p for p in _visible(root) if p.is_dir()]
    if not classes:
        raise MedAIError("a classification training folder holds one sub-folder of images per class", root)
    entries = []
    for folder in classes:
        items = _visible(folder)
        if not items:
            raise MedAIError("class folder holds no images", folder)
        entries += [{"image": str(item.relative_to(root)), "label": folder.name} for item in items]
    return entries

