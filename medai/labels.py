"""What a label value means: name, colour and a DICOM terminology entry (as Slicer's DICOM master list codes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Code:
    """A coded concept: (CodeValue, CodingSchemeDesignator, CodeMeaning), e.g. ("12738006", "SCT", "Brain")."""

    value: str
    scheme: str
    meaning: str

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> "Code":
        return cls(str(d["value"]), str(d["scheme"]), str(d["meaning"]))

    def to_dict(self) -> dict[str, str]:
        return {"value": self.value, "scheme": self.scheme, "meaning": self.meaning}


@dataclass(frozen=True)
class Terminology:
    """A segment's terminology entry: category and type are required (DICOM SEG needs both)."""

    category: Code
    type: Code
    type_modifier: Optional[Code] = None
    region: Optional[Code] = None
    region_modifier: Optional[Code] = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Terminology":
        opt = lambda key: Code.from_dict(d[key]) if d.get(key) else None  # noqa: E731
        return cls(Code.from_dict(d["category"]), Code.from_dict(d["type"]), opt("type_modifier"), opt("region"), opt("region_modifier"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"category": self.category.to_dict(), "type": self.type.to_dict()}
        for key in ("type_modifier", "region", "region_modifier"):
            code = getattr(self, key)
            if code is not None:
                out[key] = code.to_dict()
        return out


@dataclass(frozen=True)
class SegmentLabel:
    """One label value of a label map and how to show and code it."""

    value: int
    name: str
    color: tuple[float, float, float] = (1.0, 0.0, 0.0)  # RGB in 0..1
    terminology: Optional[Terminology] = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SegmentLabel":
        color = d.get("color", (1.0, 0.0, 0.0))
        if isinstance(color, str):  # "#rrggbb"
            color = tuple(int(color[i:i + 2], 16) / 255.0 for i in (1, 3, 5))
        term = Terminology.from_dict(d["terminology"]) if d.get("terminology") else None
        return cls(int(d["value"]), str(d["name"]), tuple(float(c) for c in color), term)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "name": self.name, "color": list(self.color)}
        if self.terminology is not None:
            out["terminology"] = self.terminology.to_dict()
        return out
