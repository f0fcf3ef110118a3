"""A model card: a JSON file, validated against ``card.schema.json``, describing one model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from medai.errors import MedAIError, PathLike
from medai.io.json_file import read_json
from medai.labels import SegmentLabel

SCHEMA_PATH = Path(__file__).with_name("card.schema.json")


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@dataclass(frozen=True)
class ModelCard:
    """A validated model card. ``folder`` is where the card lives (relative weight paths resolve there)."""

    data: dict[str, Any]
    folder: Optional[Path] = None
    labels: tuple[SegmentLabel, ...] = field(default=())

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def version(self) -> str:
        return self.data["version"]

    @property
    def task(self) -> str:
        return self.data["task"]

    @property
    def description(self) -> str:
        return self.data.get("description", "")

    @property
    def modality(self) -> str:
        return self.data["input"]["modality"]

    @property
    def license(self) -> str:
        return self.data["license"]

    @property
    def input(self) -> dict[str, Any]:
        return self.data["input"]

    @property
    def channels(self) -> list[dict[str, Any]]:
        """The input volumes of one case, in the network's order: ``{"name", "modality"}`` each (default: one)."""
        declared = self.input.get("channels") or [{"name": "image"}]
        return [{"modality": self.modality, **channel} for channel in declared]

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.data.get("preprocessing", {})

    @property
    def inference(self) -> dict[str, Any]:
        return self.data["inference"]

    @property
    def postprocessing(self) -> dict[str, Any]:
        return self.data.get("postprocessing", {})

    @property
    def weights(self) -> dict[str, dict[str, Any]]:
        return self.data["weights"]

    def summary(self) -> str:
        """One paragraph for a GUI or ``medai models``: what it does, what it expects, licence."""
        inp = self.input
        expects = " ".join(x for x in (inp.get("modality"), inp.get("sequence"), inp.get("body_part")) if x)
        labels = ", ".join(label.name for label in self.labels) or ", ".join(self.data.get("classes", []))
        channels = self.channels
        takes = (f"Expects a {inp['dimensions']}D {expects} image." if len(channels) == 1 else
                 f"Expects {len(channels)} {inp['dimensions']}D {expects} images per case, in this order: "
                 f"{', '.join(c['name'] for c in channels)}.")
        return (f"{self.name} (v{self.version}): {self.description} {takes} "
                f"Outputs: {labels}. Licence: {self.license}. Source: {self.data['source']}.")


def card_from_dict(data: dict[str, Any], folder: Optional[Path] = None, origin: Optional[PathLike] = None) -> ModelCard:
    """Validate ``data`` against the schema and build a card; errors name ``origin``."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise MedAIError(f"invalid model card at {where}: {first.message}", origin)
    if data["task"] == "segmentation" and not data.get("labels"):
        raise MedAIError("invalid model card: a segmentation card needs labels", origin)
    values = [label["value"] for label in data.get("labels", [])]
    if len(values) != len(set(values)):
        raise MedAIError("invalid model card: label values repeat", origin)
    labels = tuple(SegmentLabel.from_dict(d) for d in data.get("labels", []))
    return ModelCard(data=data, folder=folder, labels=labels)


def load_card(path: PathLike) -> ModelCard:
    """Read and validate a card file."""
    p = Path(path)
    data = read_json(p, "model card")
    if not isinstance(data, dict):
        raise MedAIError("not a JSON model card (top level is not an object)", p)
    return card_from_dict(data, folder=p.parent, origin=p)
