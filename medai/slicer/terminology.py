"""``medai.labels.Terminology`` <-> the terminology entry string Slicer stores on a segment.

Slicer keeps a segment's terminology in the segment tag named by ``vtkSegment.GetTerminologyEntryTagName()``
("TerminologyEntry"; ``.seg.nrrd`` files write it into ``SegmentN_Tags``). Its value, in Slicer 5.13 as in
earlier 5.x, is seven ``~``-separated fields, each code a ``scheme^value^meaning`` triple::

    <terminology context>~<category>~<type>~<type modifier>~<region context>~<region>~<region modifier>
    Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~SCT^12738006^Brain~^^~Anatomic codes - DICOM master list~^^~^^

Both directions call Slicer's own ``vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry`` and
``DeserializeTerminologyEntry``, so the string is whatever the installed Slicer writes and reads. The format
has no escaping: a code containing ``~``, ``^`` or ``|`` (the ``.seg.nrrd`` tag separator) is refused.
MedAI's codes follow Slicer's DICOM master list, so entries are written in its contexts; reading accepts
any context (a ``Terminology`` does not keep the context name).
"""

from __future__ import annotations

from typing import Optional

import slicer

from medai.errors import MedAIError
from medai.labels import Code, Terminology

#: Terminology and region contexts of Slicer's DICOM master list, which MedAI's codes follow.
TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
REGION_CONTEXT = "Anatomic codes - DICOM master list"
_UNWRITABLE = "~^|"


def to_slicer_entry(terminology: Terminology) -> str:
    """Slicer's terminology entry string for ``terminology``."""
    fields = []
    for code in (terminology.category, terminology.type, terminology.type_modifier):
        fields += _code_fields(code)
    region_fields = []
    for code in (terminology.region, terminology.region_modifier):
        region_fields += _code_fields(code)
    return slicer.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry(
        TERMINOLOGY_CONTEXT, *fields, REGION_CONTEXT, *region_fields
    )


def from_slicer_entry(entry: str) -> Optional[Terminology]:
    """The terminology in a Slicer entry string; None when it is empty, malformed, or lacks a category or type."""
    parsed = slicer.vtkSlicerTerminologyEntry()
    if not entry or not slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(entry, parsed):
        return None
    category, type_ = _code(parsed.GetCategoryObject()), _code(parsed.GetTypeObject())
    if category is None or type_ is None:
        return None
    return Terminology(
        category,
        type_,
        _code(parsed.GetTypeModifierObject()),
        _code(parsed.GetRegionObject()),
        _code(parsed.GetRegionModifierObject()),
    )


def _code_fields(code: Optional[Code]) -> list[str]:
    """(value, scheme, meaning) in the argument order of ``SerializeTerminologyEntry``; empty when absent."""
    if code is None:
        return ["", "", ""]
    fields = [code.value, code.scheme, code.meaning]
    if any(ch in field for field in fields for ch in _UNWRITABLE):
        raise MedAIError(f"terminology code {fields} contains one of {' '.join(_UNWRITABLE)}, which Slicer cannot store")
    return fields


def _code(coded) -> Optional[Code]:
    """A Code from Slicer's coded object, or None when it has no value and scheme."""
    if coded is None or not coded.GetCodeValue() or not coded.GetCodingSchemeDesignator():
        return None
    return Code(coded.GetCodeValue(), coded.GetCodingSchemeDesignator(), coded.GetCodeMeaning() or "")
