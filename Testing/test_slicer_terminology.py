"""The engine's Terminology <-> Slicer's terminology entry string, checked against Slicer's API, slicerio's parser and the
literal format Slicer 5.x writes."""

import pytest
import slicer
import slicerio
import vtk

from medai import MedAIError
from medai.labels import Code, Terminology

ANATOMY = Code("123037004", "SCT", "Anatomical Structure")
BRAIN = Terminology(ANATOMY, Code("12738006", "SCT", "Brain"))
LEFT_KIDNEY_CYST = Terminology(
    Code("49755003", "SCT", "Morphologically Altered Structure"), Code("367643001", "SCT", "Cyst"), None,
    Code("64033007", "SCT", "Kidney"), Code("7771000", "SCT", "Left"),
)
FULL = Terminology(ANATOMY, Code("71854001", "SCT", "Colon"), Code("7771000", "SCT", "Left"),
                   Code("818981001", "SCT", "Abdomen"), Code("24028007", "SCT", "Right"))


def test_entry_string_is_slicers_format():
    assert slicer.vtkSegment.GetTerminologyEntryTagName() == "TerminologyEntry"
    assert BRAIN.to_slicer_string() == (
        "Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~SCT^12738006^Brain"
        "~^^~Anatomic codes - DICOM master list~^^~^^")


@pytest.mark.parametrize("terminology", [BRAIN, LEFT_KIDNEY_CYST, FULL], ids=["type", "region", "all-codes"])
def test_round_trip_and_independent_readers_agree(terminology):
    entry = terminology.to_slicer_string()
    assert Terminology.from_slicer_string(entry) == terminology
    parsed = slicer.vtkSlicerTerminologyEntry()  # Slicer's reader sees the same codes
    assert slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(entry, parsed)
    assert parsed.GetTypeObject().GetCodeValue() == terminology.type.value
    assert slicerio.segmentation.terminology_entry_to_string(slicerio.segmentation.terminology_entry_from_string(entry)) == entry
    as_slicerio = slicerio.segmentation.terminology_entry_from_string(entry)
    assert as_slicerio["type"] == [terminology.type.scheme, terminology.type.value, terminology.type.meaning]
    if terminology.region is not None:
        assert as_slicerio["anatomicRegion"] == [terminology.region.scheme, terminology.region.value, terminology.region.meaning]


def test_segment_tag_holds_the_entry():
    segment = slicer.vtkSegment()
    segment.SetTerminology(FULL.to_slicer_string())
    tag = vtk.reference("")
    assert segment.GetTag("TerminologyEntry", tag)
    assert Terminology.from_slicer_string(str(tag)) == FULL


def test_empty_or_incomplete_entries_give_none():
    assert Terminology.from_slicer_string("") is None
    assert Terminology.from_slicer_string("not a terminology") is None
    assert Terminology.from_slicer_string("Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~^^~^^~~^^~^^") is None


def test_codes_slicer_cannot_store_are_refused():
    for meaning in ("Brain~stem", "a^b", "x|y"):
        with pytest.raises(MedAIError, match="cannot store"):
            Terminology(ANATOMY, Code("1", "SCT", meaning)).to_slicer_string()
