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

    # Slicer stores an entry as one string: context~category~type~modifier~region context~region~region modifier,
    # each code as scheme^value^meaning (a segment's "TerminologyEntry" tag; in .seg.nrrd files "SegmentN_Tags").
    # The format has no escaping. MedAI writes the DICOM master list contexts, as Slicer's DICOM export expects.
    SLICER_CATEGORY_CONTEXT = "Segmentation category and type - DICOM master list"
    SLICER_REGION_CONTEXT = "Anatomic codes - DICOM master list"

    def to_slicer_string(self) -> str:
        """The entry as Slicer's ``TerminologyEntry`` tag value; codes containing ``~ ^ |`` are refused."""

        def code(c: Optional[Code]) -> str:
            if c is None:
                return "^^"
            fields = (c.scheme, c.value, c.meaning)
            if any(ch in f for f in fields for ch in "~^|"):
                from medai.errors import MedAIError

                raise MedAIError(f"terminology code {list(fields)} contains one of ~ ^ |, which Slicer cannot store")
            return "^".join(fields)

        return "~".join((self.SLICER_CATEGORY_CONTEXT, code(self.category), code(self.type), code(self.type_modifier),
                         self.SLICER_REGION_CONTEXT, code(self.region), code(self.region_modifier)))

    @classmethod
    def from_slicer_string(cls, text: str) -> Optional["Terminology"]:
        """Parse Slicer's ``TerminologyEntry`` value; None when it has no category and type."""
        items = text.split("~")
        if len(items) < 3:
            return None

        def code(i: int) -> Optional[Code]:
            if i >= len(items):
                return None
            parts = (items[i].split("^") + ["", "", ""])[:3]
            return Code(value=parts[1], scheme=parts[0], meaning=parts[2]) if parts[1] else None

        category, type_ = code(1), code(2)
        if category is None or type_ is None:
            return None
        return cls(category, type_, code(3), code(5), code(6))

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
