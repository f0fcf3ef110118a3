"""RTSTRUCT: pixel-edge contours, written for series made from real images (MR: ITK T1, Colin27; CT: pyradiomics
lung1 and lung2) and filled again at voxel centres by an independent rasteriser; read back by ours exactly;
pydicom's shipped rtstruct.dcm (its images are not shipped) read without error.

The independent check reads the RTSTRUCT and the image files with pydicom only: each contour is matched to its
image through ContourImageSequence, its LPS points are put in that image's pixel frame from the file's own
ImagePositionPatient, ImageOrientationPatient and PixelSpacing, and filled with scikit-image's
``skimage.draw.polygon2mask`` (pixel centres at integer (row, column)); the contours of one ROI on one image are
combined by XOR, i.e. the even-odd rule made explicit. Series have shuffled file names and descending instance
numbers; the geometry variants add a flipped, an oblique and an anisotropic (0.7 x 1.3 mm pixels) grid, and the
matrices are non-square.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from skimage.draw import polygon2mask

from conftest import DERIVED_CASES
from medai import MedAIError, Volume
from medai.io.dicom.series.write import write_dicom_series
from medai.io.dicom.rtstruct import read_rtstruct, read_rtstruct_contours, write_rtstruct
from medai.io.dicom.rtstruct.contours import fill_even_odd, mask_polygons, signed_area

VARIANTS = ["original", "flipped", "oblique", "anisotropic"]
DICE = {}  # (case, variant, ROI name) -> (voxels, Dice), printed at the end of the module


# --- the contour convention on plain masks ------------------------------------------------------------------------

def assert_polygons_fill_back(mask: np.ndarray) -> list[np.ndarray]:
    polygons = mask_polygons(mask)
    np.testing.assert_array_equal(fill_even_odd(polygons, mask.shape), mask)
    xor, winding = np.zeros(mask.shape, bool), np.zeros(mask.shape, int)
    for polygon in polygons:
        assert len({tuple(v) for v in polygon.tolist()}) == len(polygon), "every polygon is simple"
        assert np.all(np.mod(polygon, 1) == 0.5), "vertices are pixel corners"
        filled = polygon2mask(mask.shape, polygon[:, ::-1])
        xor ^= filled
        winding += int(np.sign(signed_area(polygon))) * filled
    np.testing.assert_array_equal(xor, mask)  # even-odd, by scikit-image
    np.testing.assert_array_equal(winding, mask)  # non-zero winding too: holes run the other way
    assert sum(signed_area(p) for p in polygons) == pytest.approx(mask.sum())
    return polygons


def test_single_pixel_is_its_square():
    [square] = assert_polygons_fill_back(np.array([[0, 0], [0, 1]], bool))
    assert sorted(map(tuple, square.tolist())) == [(0.5, 0.5), (0.5, 1.5), (1.5, 0.5), (1.5, 1.5)]


def test_diagonal_neighbours_are_separate_polygons():
    line = np.eye(6, dtype=bool)
    assert len(assert_polygons_fill_back(line)) == 6
    assert len(assert_polygons_fill_back(np.fliplr(line))) == 6


def test_hole_with_island_and_a_ring_pinched_at_a_corner():
    ring = np.ones((7, 7), bool)
    ring[1:6, 1:6] = False
    ring[3, 3] = True
    areas = sorted(signed_area(p) for p in assert_polygons_fill_back(ring))
    assert areas == [-25.0, 1.0, 49.0]  # outline, hole (opposite orientation), island
    pinched = np.array([[1, 1, 1, 0], [1, 0, 0, 1], [1, 1, 1, 1]], bool)  # the hole meets the outside at a corner
    assert len(assert_polygons_fill_back(pinched)) == 2


def test_random_masks_fill_back_exactly():
    rng = np.random.default_rng(3)
    for density in (0.2, 0.5, 0.8):
        for _ in range(150):
            assert_polygons_fill_back(rng.random(rng.integers(1, 14, size=2)) < density)


# --- real series --------------------------------------------------------------------------------------------------

def write_rt(case, path, **kwargs):
    return write_rtstruct(case.label_map, case.labels, case.source, path, algorithm_name="test-model",
                          algorithm_version="1.2.3", **kwargs)


def independent_fill(rt: pydicom.Dataset, files) -> dict[int, np.ndarray]:
    """ROI number -> K,J,I mask in the files' order, from contours, image headers and scikit-image only."""
    images = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    k_of = {str(ds.SOPInstanceUID): k for k, ds in enumerate(images)}
    shape = (len(images), int(images[0].Rows), int(images[0].Columns))
    masks = {}
    for roi in rt.ROIContourSequence:
        mask = np.zeros(shape, bool)
        for contour in roi.ContourSequence:
            assert contour.ContourGeometricType == "CLOSED_PLANAR"
            [reference] = contour.ContourImageSequence
            k = k_of[str(reference.ReferencedSOPInstanceUID)]
            image = images[k]
            position = np.array(image.ImagePositionPatient, float)
            row_cosine, column_cosine = np.array(image.ImageOrientationPatient, float).reshape(2, 3)
            row_spacing, column_spacing = np.array(image.PixelSpacing, float)
            points = np.array(contour.ContourData, float).reshape(-1, 3)
            assert len(points) == int(contour.NumberOfContourPoints)
            offset = points - position
            np.testing.assert_allclose(offset @ np.cross(row_cosine, column_cosine), 0, atol=1e-4)  # on the image
            column = offset @ row_cosine / column_spacing
            row = offset @ column_cosine / row_spacing
            mask[k] ^= polygon2mask(shape[1:], np.column_stack([row, column]))
        masks[int(roi.ReferencedROINumber)] = mask
    return masks


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case_name", list(DERIVED_CASES))
def test_rtstruct_filled_independently_gives_back_the_labels(derived_case, case_name, variant, tmp_path):
    case = derived_case(case_name, variant)
    rt = pydicom.dcmread(write_rt(case, tmp_path / "rt.dcm"))
    filled = independent_fill(rt, case.files)
    assert sorted(filled) == [1, 2, 3, 4, 5]
    for label in case.labels:
        truth = case.written_labels == label.value
        score = dice(filled[label.value], truth)
        DICE[case_name, variant, label.name] = (int(truth.sum()), score)
        if truth.sum() >= 1000:
            assert score >= 0.98, (label.name, score)
        if truth.sum() >= 10:
            assert np.logical_and(filled[label.value], truth).any(), label.name
        np.testing.assert_array_equal(filled[label.value], truth, err_msg=label.name)  # in fact: exact

    back, labels = read_rtstruct(tmp_path / "rt.dcm", case.folder)
    assert back.same_grid(case.source, tol=1e-9)
    np.testing.assert_array_equal(back.array, case.label_map.array)
    assert [(label.value, label.name) for label in labels] == [(label.value, label.name) for label in case.labels]
    for got, want in zip(labels, case.labels):
        assert got.color == tuple(round(c * 255) / 255 for c in want.color)
        assert got.extra["rt_roi_interpreted_type"] == "ORGAN"


def test_dice_summary():
    """Printed with ``pytest -s``: Dice of the independent fill per structure (every one is exact)."""
    assert DICE, "run with the round-trip tests"
    for (case, variant, name), (voxels, score) in sorted(DICE.items()):
        print(f"{case:11s} {variant:12s} {name:14s} {voxels:6d} voxels  Dice {score:.4f}")
    assert min(score for _, score in DICE.values()) == 1.0


def test_rtstruct_references_and_attributes(derived_case, tmp_path):
    case = derived_case("ct-lung2", "oblique")
    rt = pydicom.dcmread(write_rt(case, tmp_path / "rt.dcm", interpreted_types={1: "GTV"}))
    first = pydicom.dcmread(case.files[0], stop_before_pixels=True)
    assert rt.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3" and rt.Modality == "RTSTRUCT"
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate"):
        assert rt[keyword].value == first[keyword].value, keyword
    [frame] = rt.ReferencedFrameOfReferenceSequence
    assert frame.FrameOfReferenceUID == first.FrameOfReferenceUID
    [study] = frame.RTReferencedStudySequence
    assert study.ReferencedSOPInstanceUID == first.StudyInstanceUID
    [series] = study.RTReferencedSeriesSequence
    assert series.SeriesInstanceUID == first.SeriesInstanceUID
    uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in case.files}
    assert {str(i.ReferencedSOPInstanceUID) for i in series.ContourImageSequence} == uids
    assert {str(i.ReferencedSOPClassUID) for i in series.ContourImageSequence} == {str(first.SOPClassUID)}
    assert [(int(r.ROINumber), r.ROIName, r.ROIGenerationAlgorithm) for r in rt.StructureSetROISequence] == [
        (label.value, label.name, "AUTOMATIC") for label in case.labels]
    assert all(r.ReferencedFrameOfReferenceUID == first.FrameOfReferenceUID for r in rt.StructureSetROISequence)
    assert [list(map(int, c.ROIDisplayColor)) for c in rt.ROIContourSequence][0] == [204, 51, 26]
    assert [o.RTROIInterpretedType for o in rt.RTROIObservationsSequence] == ["GTV"] + ["ORGAN"] * 4
    assert rt.RTROIObservationsSequence[0].RTROIIdentificationCodeSequence[0].CodeValue == "108369006"
    # contours on the slices with content only; the diagonal line is 12 one-pixel squares, the L 3 x (outline,
    # hole, island)
    counts = {int(c.ReferencedROINumber): len(c.ContourSequence) for c in rt.ROIContourSequence}
    assert counts[2] == 9 and counts[3] == 2 and counts[4] == 12 and counts[5] == 1
    assert rt.ApprovalStatus == "UNAPPROVED"


def test_empty_labels_are_skipped(derived_case, tmp_path, caplog):
    case = derived_case("mr-colin27", "flipped")
    array = np.where(case.label_map.array == 3, 0, case.label_map.array)
    with caplog.at_level(logging.WARNING):
        path = write_rtstruct(case.label_map.with_array(array), case.labels, case.source, tmp_path / "rt.dcm")
    assert "segment 3 'ten voxels' is empty and is not written" in caplog.text
    back, labels = read_rtstruct(path, case.source)
    assert [label.value for label in labels] == [1, 2, 4, 5]
    np.testing.assert_array_equal(back.array, array)


def test_reader_picks_rois_and_handles_overlaps(derived_case, tmp_path):
    case = derived_case("mr-itk", "anisotropic")
    inner = np.where(case.label_map.array == 2, 2, 0).astype(np.uint8)
    outer = np.where(case.label_map.array > 0, 1, 0).astype(np.uint8)  # contains the L
    write_rtstruct(case.label_map.with_array(outer), case.labels[:1], case.source, tmp_path / "a.dcm")
    write_rtstruct(case.label_map.with_array(inner), case.labels[1:2], case.source, tmp_path / "b.dcm")
    a, b = pydicom.dcmread(tmp_path / "a.dcm"), pydicom.dcmread(tmp_path / "b.dcm")
    for keyword in ("StructureSetROISequence", "ROIContourSequence", "RTROIObservationsSequence"):
        a[keyword].value.extend(b[keyword].value)
    a.save_as(tmp_path / "both.dcm")
    with pytest.raises(MedAIError, match="segments 'Brain' and 'L with hole' overlap"):
        read_rtstruct(tmp_path / "both.dcm", case.source)
    back, _ = read_rtstruct(tmp_path / "both.dcm", case.source, overlap="later")
    np.testing.assert_array_equal(back.array, np.where(inner == 2, 2, outer))
    back, labels = read_rtstruct(tmp_path / "both.dcm", case.source, rois=["L with hole"])
    assert [label.name for label in labels] == ["L with hole"]
    np.testing.assert_array_equal(back.array, inner)
    with pytest.raises(MedAIError, match="has no ROI named 'Liver'; it has 'Brain', 'L with hole'"):
        read_rtstruct(tmp_path / "both.dcm", case.source, rois=["Liver"])


def test_reader_refuses_contours_off_the_series(derived_case, tmp_path):
    case = derived_case("mr-itk", "oblique")
    rt = pydicom.dcmread(write_rt(case, tmp_path / "rt.dcm"))
    normal = case.source.direction[:, 2] * case.source.spacing[2]
    contour = rt.ROIContourSequence[1].ContourSequence[0]
    contour.ContourData = (np.array(contour.ContourData, float).reshape(-1, 3) + 0.3 * normal).ravel().tolist()
    rt.save_as(tmp_path / "moved.dcm")
    with pytest.raises(MedAIError, match="ROI 2 'L with hole': contour 1 lies at slice positions .* not on a slice"):
        read_rtstruct(tmp_path / "moved.dcm", case.source)
    other = derived_case("mr-colin27", "oblique")
    with pytest.raises(MedAIError, match="is in frame of reference .* it was made for other images"):
        read_rtstruct(tmp_path / "rt.dcm", other.folder)


def test_writer_refuses_what_it_cannot_write(derived_case, tmp_path):
    case = derived_case("ct-lung1", "original")
    shifted = Volume(case.label_map.array, case.source.spacing, case.source.origin, np.eye(3)[:, [1, 0, 2]])
    with pytest.raises(MedAIError, match="not on the source series' grid"):
        write_rtstruct(shifted, case.labels, case.source, tmp_path / "rt.dcm")
    with pytest.raises(MedAIError, match="'TUMOUR' is not an RT ROI interpreted type"):
        write_rtstruct(case.label_map, case.labels, case.source, tmp_path / "rt.dcm", interpreted_types="TUMOUR")
    with pytest.raises(MedAIError, match="the folder to write into does not exist"):
        write_rtstruct(case.label_map, case.labels, case.source, tmp_path / "missing" / "rt.dcm")
    assert not list(tmp_path.iterdir())


# --- pydicom's rtstruct.dcm -----------------------------------------------------------------------------------------

def test_pydicom_rtstruct_contours():
    """rtstruct.dcm (no preamble, implicit VR; images not shipped): ROI names, colours, types and every contour."""
    path = get_testdata_file("rtstruct.dcm")
    raw = pydicom.dcmread(path, force=True)
    structure = read_rtstruct_contours(path)
    assert structure.label == "sep30"
    assert structure.frame_of_reference_uid == raw.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
    assert [(r.number, r.name, r.interpreted_type) for r in structure.rois] == [
        (1, "patient", "EXTERNAL"), (2, "Isocenter 1", "ISOCENTER"), (3, "Isocenter 2", "ISOCENTER")]
    assert structure.rois[0].color == (220 / 255, 160 / 255, 120 / 255)
    for roi, item in zip(structure.rois, raw.ROIContourSequence):
        assert len(roi.contours) == len(item.ContourSequence)
        for contour, raw_contour in zip(roi.contours, item.ContourSequence):
            assert contour.points.shape == (int(raw_contour.NumberOfContourPoints), 3)
            np.testing.assert_array_equal(contour.points.ravel(), np.array(raw_contour.ContourData, float))
    assert [c.geometric_type for c in structure.rois[0].contours] == ["CLOSED_PLANAR"] * 3
    assert [c.points[0, 2] for c in structure.rois[0].contours] == [-200.0, -190.0, -180.0]


def test_pydicom_rtstruct_on_a_series_in_its_frame_of_reference(tmp_path, caplog):
    """The 400 x 300 mm outline of rtstruct.dcm on a stand-in series (blank voxels; its images are not shipped) of
    10 mm pixels placed so the outline's corners fall on pixel corners: 40 x 30 pixels on each of its 3 slices."""
    path = get_testdata_file("rtstruct.dcm")
    frame_uid = read_rtstruct_contours(path).frame_of_reference_uid
    blank = Volume(np.zeros((4, 40, 50), np.int16), [10.0, 10.0, 10.0], [-245.0, -195.0, -200.0])
    write_dicom_series(blank, tmp_path / "ct", frame_of_reference_uid=frame_uid)
    with caplog.at_level(logging.WARNING):
        back, labels = read_rtstruct(path, tmp_path / "ct")
    assert "ROI 2 'Isocenter 1' has no closed planar contours; it is left out" in caplog.text
    assert [(label.value, label.name) for label in labels] == [(1, "patient")]
    expected = np.zeros(back.array.shape, np.uint8)
    expected[:3, 5:35, 5:45] = 1
    np.testing.assert_array_equal(back.array, expected)
    shutil.rmtree(tmp_path / "ct")
    write_dicom_series(blank, tmp_path / "ct")
    with pytest.raises(MedAIError, match="frame of reference"):
        read_rtstruct(path, tmp_path / "ct")


def test_enhanced_multiframe_source(tmp_path):
    """pydicom's eCT_Supplemental.dcm (2 frames in one file, K order = reverse frame order): contours reference
    the file and the frame, and lie on that frame's plane."""
    from medai.io.dicom.series.read import read_dicom
    from medai.labels import SegmentLabel

    path = get_testdata_file("eCT_Supplemental.dcm")
    source = read_dicom(path)
    label_map = np.zeros(source.array.shape, np.uint8)
    label_map[0, 100:140, 200:260] = 1
    write_rtstruct(source.with_array(label_map), [SegmentLabel(1, "block")], source, tmp_path / "rt.dcm")
    rt = pydicom.dcmread(tmp_path / "rt.dcm")
    [contour] = rt.ROIContourSequence[0].ContourSequence
    reference = contour.ContourImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == pydicom.dcmread(path).SOPInstanceUID
    assert int(reference.ReferencedFrameNumber) == 2
    frame = pydicom.dcmread(path).PerFrameFunctionalGroupsSequence[1]
    position = np.array(frame.PlanePositionSequence[0].ImagePositionPatient, float)
    normal = source.direction[:, 2]
    np.testing.assert_allclose((np.array(contour.ContourData, float).reshape(-1, 3) - position) @ normal, 0, atol=1e-6)
    back, _ = read_rtstruct(tmp_path / "rt.dcm", source)
    np.testing.assert_array_equal(back.array, label_map)
