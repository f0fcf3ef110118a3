"""De-identification with dicognito: a DICOM series written from a real MR crop (Colin27), a DICOM SEG of its
brain mask (highdicom) and an RTSTRUCT contouring it, de-identified together. Checked: no original patient name,
ID or birth date (nor other names, UIDs or planted identifiers) in any byte of any output file or in any output
path; the series reads back with identical voxels and geometry; the SEG's and RTSTRUCT's references all resolve
to the de-identified images; the source folder is byte-for-byte unchanged; bad targets are refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid

from conftest import assert_same_physical, crop, geometry_variants
from medai import MedAIError
from medai.io import read_volume
from medai.io.dicom.deidentify import deidentify_datasets, deidentify_files, deidentify_folder
from medai.io.dicom.series.write import write_dicom_series

PATIENT = {"PatientName": "Doe^Jane", "PatientID": "ID12345", "PatientBirthDate": "19700101"}
#: Byte strings that must not appear in any output file (the patient's identity and other identifiers planted below).
SECRETS = (b"Doe^Jane", b"Jane", b"ID12345", b"19700101", b"House^Gregory", b"Smith^John", b"Springfield General")
START, SIZE = (60, 90, 80), (32, 40, 48)  # conftest's colin27_crop region


@pytest.fixture(scope="module")
def study(tmp_path_factory, colin27, colin27_brain_mask) -> Path:
    """A study folder named after the patient: MR series (oblique, shuffled names), SEG, RTSTRUCT, a text note."""
    root = tmp_path_factory.mktemp("deid") / "Doe_Jane_ID12345"
    root.mkdir()
    image = geometry_variants(crop(colin27, START, SIZE))["oblique"]
    write_dicom_series(image, root / "MR Doe^Jane", modality="MR", patient=PATIENT, shuffle_names=True, seed=3)
    for path in (root / "MR Doe^Jane").iterdir():  # identifiers a real scanner leaves in places dicognito alone misses
        ds = pydicom.dcmread(path)
        ds.ReferringPhysicianName = "House^Gregory"
        ds.InstitutionName = "Springfield General"
        ds.ImageComments = "follow-up of Jane Doe"
        block = ds.private_block(0x0011, "ACME SCANNER", create=True)
        block.add_new(0x01, "LO", "Doe^Jane ID12345")
        ds.save_as(path)
    volume = read_volume(root / "MR Doe^Jane")
    assert volume.same_grid(image), "a right-handed series reads back in its own K order"
    sources = [pydicom.dcmread(f) for f in volume.metadata["dicom"]["files"]]  # K order: slice k of the mask
    brain = crop(colin27_brain_mask, START, SIZE).array.astype(bool)
    _seg(sources, brain).save_as(root / "seg.dcm")
    _rtstruct(sources).save_as(root / "rtstruct.dcm", enforce_file_format=True)
    (root / "notes.txt").write_text("Doe^Jane ID12345 born 19700101\n")
    return root


def _seg(sources: list, mask: np.ndarray) -> hd.seg.Segmentation:
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Brain",
        segmented_property_category=codes.SCT.AnatomicalStructure, segmented_property_type=codes.SCT.Brain,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(name="MedAI test", version="1", family=codes.cid7162.ArtificialIntelligence),
    )
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=generate_uid(), series_number=2,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="MedAI", manufacturer_model_name="test",
        software_versions="0", device_serial_number="1", content_creator_name="Smith^John",
    )


def _rtstruct(sources: list) -> pydicom.FileDataset:
    """A minimal RTSTRUCT: one ROI, a square contour on three slices, every image in the contour image sequence."""
    first = sources[0]
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = RTStructureSetStorage, ExplicitVRLittleEndian
    ds = pydicom.FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = RTStructureSetStorage, generate_uid()
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                    "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID"):
        setattr(ds, keyword, first.get(keyword, ""))
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), 3
    ds.StructureSetLabel, ds.StructureSetDate, ds.StructureSetTime = "Brain", first.StudyDate, first.StudyTime
    ds.OperatorsName = "Smith^John"
    image_items = [_ref(s) for s in sources]
    series = pydicom.Dataset()
    series.SeriesInstanceUID, series.ContourImageSequence = first.SeriesInstanceUID, image_items
    rt_study = pydicom.Dataset()
    rt_study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired, as TPS write it)
    rt_study.ReferencedSOPInstanceUID, rt_study.RTReferencedSeriesSequence = first.StudyInstanceUID, [series]
    frame = pydicom.Dataset()
    frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = first.FrameOfReferenceUID, [rt_study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    roi = pydicom.Dataset()
    roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName, roi.ROIGenerationAlgorithm = 1, first.FrameOfReferenceUID, "Brain", "AUTOMATIC"
    ds.StructureSetROISequence = [roi]
    contours = []
    for s in sources[10:13]:
        origin = np.array(s.ImagePositionPatient, float)
        row, col = np.array(s.ImageOrientationPatient[:3], float), np.array(s.ImageOrientationPatient[3:], float)
        square = [origin + 10 * row * a + 10 * col * b for a, b in ((1, 1), (3, 1), (3, 3), (1, 3))]
        contour = pydicom.Dataset()
        contour.ContourImageSequence = [_ref(s)]
        contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", 4
        contour.ContourData = [f"{v:.6f}" for p in square for v in p]
        contours.append(contour)
    roi_contour = pydicom.Dataset()
    roi_contour.ReferencedROINumber, roi_contour.ROIDisplayColor, roi_contour.ContourSequence = 1, [230, 150, 130], contours
    ds.ROIContourSequence = [roi_contour]
    observation = pydicom.Dataset()
    observation.ObservationNumber, observation.ReferencedROINumber, observation.RTROIInterpretedType, observation.ROIInterpreter = 1, 1, "ORGAN", ""
    ds.RTROIObservationsSequence = [observation]
    return ds


def _ref(source) -> pydicom.Dataset:
    item = pydicom.Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
    return item


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _uids(ds: pydicom.Dataset, keyword: str) -> list[str]:
    found = []
    ds.walk(lambda _, element: found.append(str(element.value)) if element.keyword == keyword else None)
    return found


@pytest.fixture(scope="module")
def deidentified(study, tmp_path_factory) -> tuple[Path, list[Path], dict[str, str], dict[str, str]]:
    before = _hashes(study)
    out = tmp_path_factory.mktemp("deid-out") / "anonymous"
    files = deidentify_folder(study, out)
    return out, files, before, _hashes(study)


def test_source_folder_is_unchanged(deidentified):
    _, _, before, after = deidentified
    assert before == after and len(before) == 32 + 3


def test_every_dicom_file_is_written_under_neutral_names(deidentified):
    out, files, _, _ = deidentified
    assert sorted(files) == sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) == 32 + 2, "32 images, SEG and RTSTRUCT; the text note is not DICOM and is not copied"
    assert sorted({p.parent.name for p in files}) == ["001_MR", "002_SEG", "003_RTSTRUCT"]
    for path in files:
        assert not any(s.decode().lower() in str(path.relative_to(out)).lower() for s in (b"Doe", b"Jane", b"ID12345"))
    assert not list(out.parent.glob(".medai-partial-*")), "staging folder left behind"


def test_no_identifier_in_any_byte_of_any_output(deidentified, study):
    out, files, _, _ = deidentified
    original_uids = set()
    for path in study.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID"):
            original_uids.update(_uids(ds, keyword))
    assert len(original_uids) > 34
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret not in data, f"{secret!r} left in {path.relative_to(out)}"
        for uid in original_uids:
            assert uid.encode() not in data, f"original UID {uid} left in {path.relative_to(out)}"
        ds = pydicom.dcmread(path)
        assert "DICOGNITO" in str(ds.DeidentificationMethod)
        # dicognito claims PatientIdentityRemoved only when the file states it has no burned-in text
        assert ds.get("PatientIdentityRemoved") == ("YES" if ds.get("BurnedInAnnotation") == "NO" else None)
        assert ds.PatientName and ds.PatientID and ds.PatientBirthDate, "replaced, not emptied"
        assert not any(element.tag.is_private for element in ds.iterall())
        assert "ImageComments" not in ds


def test_series_reads_back_with_identical_voxels_and_geometry(deidentified, study):
    out, _, _, _ = deidentified
    original = read_volume(study / "MR Doe^Jane")
    back = read_volume(out / "001_MR")
    np.testing.assert_array_equal(back.array, original.array)
    np.testing.assert_allclose(back.index_to_lps_matrix(), original.index_to_lps_matrix(), atol=1e-9)
    assert_same_physical(original, back)
    same_folder = read_volume(out)  # the SEG and RTSTRUCT beside it are not images
    np.testing.assert_array_equal(same_folder.array, original.array)


def test_seg_references_resolve_to_the_deidentified_images(deidentified, study):
    out, _, _, _ = deidentified
    images = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p) for p in sorted((out / "001_MR").iterdir()))}
    first = next(iter(images.values()))
    seg = hd.seg.segread(next((out / "002_SEG").iterdir()))
    referenced = set(_uids(seg, "ReferencedSOPInstanceUID"))
    assert referenced and referenced <= set(images)
    assert seg.FrameOfReferenceUID == first.FrameOfReferenceUID and seg.StudyInstanceUID == first.StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert seg.PatientName == first.PatientName and seg.PatientID == first.PatientID
    # the segment still lies on the same images: the original SEG's frames per source slice, matched by position
    original_seg = hd.seg.segread(study / "seg.dcm")
    original_images = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in (study / "MR Doe^Jane").iterdir()}
    by_position = {tuple(np.round(np.array(ds.ImagePositionPatient, float), 4)): uid for uid, ds in images.items()}
    for old_uid in sorted(set(_uids(original_seg, "ReferencedSOPInstanceUID")))[:6]:
        old = pydicom.dcmread(original_images[old_uid], stop_before_pixels=True)
        new_uid = by_position[tuple(np.round(np.array(old.ImagePositionPatient, float), 4))]
        pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=[new_uid])
        assert pixels.any()
        np.testing.assert_array_equal(pixels, original_seg.get_pixels_by_source_instance(source_sop_instance_uids=[old_uid]))


def test_rtstruct_references_resolve_to_the_deidentified_images(deidentified):
    out, _, _, _ = deidentified
    images = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in (out / "001_MR").iterdir())}
    first = next(iter(images.values()))
    rt = pydicom.dcmread(next((out / "003_RTSTRUCT").iterdir()))
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == first.FrameOfReferenceUID == rt.StructureSetROISequence[0].ReferencedFrameOfReferenceUID
    study_item = frame.RTReferencedStudySequence[0]
    assert study_item.ReferencedSOPInstanceUID == first.StudyInstanceUID
    assert study_item.ReferencedSOPClassUID == "1.2.840.10008.3.1.2.3.1", "a class UID is not an identifier: kept"
    assert study_item.RTReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    contour_images = {item.ReferencedSOPInstanceUID for item in study_item.RTReferencedSeriesSequence[0].ContourImageSequence}
    assert contour_images == set(images)
    for contour in rt.ROIContourSequence[0].ContourSequence:
        image = images[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
        normal = np.cross(np.array(image.ImageOrientationPatient[:3], float), np.array(image.ImageOrientationPatient[3:], float))
        points = np.array(contour.ContourData, float).reshape(-1, 3)
        np.testing.assert_allclose(points @ normal, np.array(image.ImagePositionPatient, float) @ normal, atol=1e-4)


def test_sources_given_separately_share_one_anonymiser(study, tmp_path):
    out = tmp_path / "out"
    files = deidentify_files([study / "rtstruct.dcm", study / "MR Doe^Jane", study / "seg.dcm"], out)
    assert len(files) == 34
    images = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in (out / "001_MR").iterdir()}
    seg = pydicom.dcmread(next((out / "002_SEG").iterdir()))
    rt = pydicom.dcmread(next((out / "003_RTSTRUCT").iterdir()))
    assert set(_uids(seg, "ReferencedSOPInstanceUID")) <= images
    assert images <= set(_uids(rt, "ReferencedSOPInstanceUID"))


def test_a_seed_makes_the_mapping_reproducible(study, tmp_path):
    runs = {}
    for name, seed in (("a", "secret-1"), ("b", "secret-1"), ("c", "secret-2"), ("d", None)):
        files = deidentify_files([study / "seg.dcm"], tmp_path / name, seed=seed)
        ds = pydicom.dcmread(files[0])
        runs[name] = (ds.SOPInstanceUID, str(ds.PatientName), ds.PatientID, ds.PatientBirthDate)
    assert runs["a"] == runs["b"]
    assert runs["a"][0] != runs["c"][0] and runs["a"][0] != runs["d"][0]


def test_datasets_in_memory_are_deidentified_consistently(study):
    images = [pydicom.dcmread(p) for p in sorted((study / "MR Doe^Jane").iterdir())]
    seg = pydicom.dcmread(study / "seg.dcm")
    deidentify_datasets([*images, seg])
    uids = {ds.SOPInstanceUID for ds in images}
    assert set(_uids(seg, "ReferencedSOPInstanceUID")) <= uids
    assert all(str(ds.PatientName) != "Doe^Jane" and ds.PatientID != "ID12345" for ds in [*images, seg])
    assert len({ds.StudyInstanceUID for ds in [*images, seg]}) == 1


def test_refusals_leave_nothing_behind(study, tmp_path):
    before = _hashes(study)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(MedAIError, match="not an empty folder"):
        deidentify_folder(study, busy)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    with pytest.raises(MedAIError, match="inside the folder being de-identified"):
        deidentify_folder(study, study / "anonymous")
    with pytest.raises(MedAIError, match="does not exist"):
        deidentify_folder(study, tmp_path / "missing" / "out")
    with pytest.raises(MedAIError, match="no such folder"):
        deidentify_folder(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(MedAIError, match="not a DICOM file"):
        deidentify_files([study / "notes.txt"], tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MedAIError, match="no DICOM files"):
        deidentify_folder(empty, tmp_path / "out")
    assert _hashes(study) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "empty"]


def test_burned_in_annotation_is_refused(study, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ds = pydicom.dcmread(next((study / "MR Doe^Jane").iterdir()))
    ds.BurnedInAnnotation = "YES"
    ds.save_as(src / "burned.dcm")
    with pytest.raises(MedAIError, match="BurnedInAnnotation"):
        deidentify_folder(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(MedAIError, match="BurnedInAnnotation"):
        deidentify_datasets([ds])
    assert str(ds.PatientName) == "Doe^Jane", "refused before changing anything"


def _ui_by_position(ds: pydicom.Dataset, prefix: tuple = ()) -> dict[tuple, str]:
    """Every UID value of ``ds`` keyed by where it sits (tags and sequence item indices)."""
    found = {}
    for element in ds:
        if element.VR == "SQ":
            for index, item in enumerate(element.value):
                found.update(_ui_by_position(item, prefix + (element.tag, index)))
        elif element.VR == "UI" and element.value:
            values = element.value if isinstance(element.value, pydicom.multival.MultiValue) else [element.value]
            found.update({prefix + (element.tag, n): str(v) for n, v in enumerate(values)})
    return found


def test_pydicom_seg_and_rtstruct_test_files(tmp_path):
    """pydicom's liver.dcm (a SEG) and rtstruct.dcm (no preamble or file meta): both de-identified, one mapping.

    Their images are not shipped, so what is checked is that every UID is mapped one-to-one (equal values stay
    equal, distinct values stay distinct: internal references still resolve), class UIDs are kept, and identity goes.
    """
    from pydicom.data import get_testdata_file

    sources = [Path(get_testdata_file("liver.dcm")), Path(get_testdata_file("rtstruct.dcm"))]
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(sources[1])  # no preamble: read only with force
    files = deidentify_files(sources, tmp_path / "out")
    assert len(files) == 2
    mapping: dict[str, str] = {}
    for original_path, written in zip(sources, sorted(files, key=lambda p: p.parent.name.endswith("RTSTRUCT"))):
        original = pydicom.dcmread(original_path, force=True)
        out = pydicom.dcmread(written)  # now a proper file with a preamble
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
        assert out.SOPClassUID == original.SOPClassUID
        if original.get("PatientName"):
            assert str(out.PatientName) != str(original.PatientName)
        if original.get("PatientID"):
            assert out.PatientID != original.PatientID
        before, after = _ui_by_position(original), _ui_by_position(out)
        assert set(after) <= set(before)
        for position, new in after.items():
            old = before[position]
            if "ClassUID" in pydicom.datadict.keyword_for_tag(position[-2]) or old.startswith("1.2.840.10008."):
                assert new == old
            else:
                assert new != old and mapping.setdefault(old, new) == new
    assert len(set(mapping.values())) == len(mapping), "two original UIDs became one"
