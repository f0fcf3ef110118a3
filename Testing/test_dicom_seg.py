"""DICOM SEG: written for series made from real images (MR: ITK T1, Colin27; CT: pyradiomics lung1 and lung2),
checked by highdicom's own readers (frames by source instance, and its volume in physical space), read back by
ours voxel for voxel; pydicom's shipped liver.dcm (its CT is not shipped) read by highdicom and by our reader.

Every series has shuffled file names and descending instance numbers; the geometry variants add a flipped
(det < 0), an oblique and an anisotropic (0.7 x 1.3 mm pixels, rotated, flipped) grid; matrices are non-square.
"""

from __future__ import annotations

import logging

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from conftest import DERIVED_CASES
from medai import MedAIError, Volume
from medai.io.dicom.seg import TISSUE, read_dicom_seg, read_dicom_seg_segments, write_dicom_seg
from medai.io.dicom.series.read import read_dicom
from medai.io.dicom.series.write import write_dicom_series

VARIANTS = ["original", "flipped", "oblique", "anisotropic"]


def write_seg(case, path, **kwargs):
    return write_dicom_seg(case.label_map, case.labels, case.source, path, algorithm_name="test-model",
                           algorithm_version="1.2.3", **kwargs)


def written_uids(case) -> list[str]:
    """SOP instance UIDs of the series files in the written K order, read with pydicom (not via read_dicom)."""
    return [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in case.files]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case_name", list(DERIVED_CASES))
def test_seg_agrees_with_highdicom_and_reads_back_exactly(derived_case, case_name, variant, tmp_path):
    case = derived_case(case_name, variant)
    path = write_seg(case, tmp_path / "seg.dcm")
    seg = hd.seg.segread(path)

    # highdicom, by source instance in the order the files were written (segment numbers = label values here)
    uids = written_uids(case)
    by_instance = seg.get_pixels_by_source_instance(uids, combine_segments=True)
    np.testing.assert_array_equal(by_instance, case.written_labels)

    # one frame per (segment, slice with content), each referencing its source image and holding voxels
    expected_frames = {(uids[k], value) for value in range(1, 6) for k in range(case.written_labels.shape[0])
                       if (case.written_labels[k] == value).any()}
    frames = set()
    for n, groups in enumerate(seg.PerFrameFunctionalGroupsSequence):
        source = groups.DerivationImageSequence[0].SourceImageSequence[0]
        number = int(groups.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        frames.add((str(source.ReferencedSOPInstanceUID), number))
        k = uids.index(str(source.ReferencedSOPInstanceUID))
        np.testing.assert_array_equal(seg.get_stored_frame(n + 1), case.written_labels[k] == number)
    assert frames == expected_frames and int(seg.NumberOfFrames) == len(expected_frames)

    # our reader: the label map on the series grid, exactly; the series given as a folder or as a volume
    for series in (case.folder, case.source):
        back, labels = read_dicom_seg(path, series)
        assert back.same_grid(case.source, tol=1e-9)
        np.testing.assert_array_equal(back.array, case.label_map.array)
    assert_labels_round_trip(labels, case.labels)


def test_highdicom_volume_matches_in_physical_space(derived_case, tmp_path):
    """highdicom's get_volume (frames placed by their positions, not references) on the oblique, flipped grid."""
    for variant in ("oblique", "anisotropic"):
        case = derived_case("mr-itk", variant)
        seg = hd.seg.segread(write_seg(case, tmp_path / f"{variant}.dcm"))
        volume = seg.get_volume(combine_segments=True)
        ours = case.written.with_array(case.written_labels)
        index = np.indices(volume.array.shape).reshape(3, -1).T  # highdicom's (slice, row, column)
        lps = (np.column_stack([index, np.ones(len(index))]) @ volume.affine.T)[:, :3]
        ijk = ours.ijk_indices(lps)
        np.testing.assert_allclose(ijk, np.round(ijk), atol=1e-4)
        i, j, k = np.round(ijk).astype(int).T
        assert (k >= 0).all() and (k < ours.array.shape[0]).all()
        np.testing.assert_array_equal(volume.array.reshape(-1), ours.array[k, j, i])
        assert np.count_nonzero(volume.array) == np.count_nonzero(case.written_labels)


def assert_labels_round_trip(read, written):
    assert [(label.value, label.name) for label in read] == [(label.value, label.name) for label in written]
    for got, want in zip(read, written):
        assert got.terminology == (want.terminology or TISSUE)
        np.testing.assert_allclose(got.color, want.color, atol=1.0 / 255)
        assert got.extra["algorithm_type"] == "AUTOMATIC" and got.extra["algorithm_name"] == "test-model"


def test_seg_references_the_series_and_copies_patient_and_study(derived_case, tmp_path):
    case = derived_case("ct-lung2", "oblique")
    seg = pydicom.dcmread(write_seg(case, tmp_path / "seg.dcm", series_description="lung seg"))
    first = pydicom.dcmread(case.files[0], stop_before_pixels=True)
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "FrameOfReferenceUID", "StudyDate"):
        assert seg[keyword].value == first[keyword].value, keyword
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentationType == "BINARY"
    assert seg.SeriesDescription == "lung seg" and seg.SeriesInstanceUID != first.SeriesInstanceUID
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == first.SeriesInstanceUID
    assert {str(i.ReferencedSOPInstanceUID) for i in referenced.ReferencedInstanceSequence} == set(written_uids(case))
    segment = seg.SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "AUTOMATIC" and segment.SegmentAlgorithmName == "test-model"
    assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == "1.2.3"
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert segment.AnatomicRegionSequence[0].CodeMeaning == "Lung"
    kidney = seg.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0]
    assert kidney.CodeValue == "64033007" and kidney.SegmentedPropertyTypeModifierCodeSequence[0].CodeMeaning == "Left"
    assert hd.color.CIELabColor.from_dicom_value(seg.SegmentSequence[0].RecommendedDisplayCIELabValue).to_rgb() == (204, 51, 26)


def test_empty_segments_are_skipped_and_renumbered(derived_case, tmp_path, caplog):
    case = derived_case("mr-colin27", "original")
    array = case.label_map.array.copy()
    array[array == 2] = 0  # "L with hole" now empty
    array[array == 5] = 7  # the single voxel under a value that is not 1..N
    labels = [label for label in case.labels if label.value != 5]
    labels.append(type(labels[0])(7, "seven", (0.5, 0.5, 0.5), labels[0].terminology))
    with caplog.at_level(logging.WARNING):
        path = write_dicom_seg(case.source.with_array(array), labels, case.source, tmp_path / "seg.dcm",
                               algorithm_name="m", algorithm_version="1")
    assert "segment 2 'L with hole' is empty and is not written" in caplog.text
    assert "segment 3 'ten voxels' has no terminology; it is coded as Tissue/Tissue" in caplog.text
    back, read = read_dicom_seg(path, case.source)
    assert [(label.value, label.name) for label in read] == [(1, "Brain"), (2, "ten voxels"), (3, "diagonal line"),
                                                             (4, "seven")]
    renumbered = np.select([array == 1, array == 3, array == 4, array == 7], [1, 2, 3, 4], 0)
    np.testing.assert_array_equal(back.array, renumbered)


def test_labelmap_seg_reads_back_exactly(derived_case, tmp_path):
    case = derived_case("ct-lung1", "anisotropic")
    path = write_seg(case, tmp_path / "seg.dcm", segmentation_type="LABELMAP")
    assert pydicom.dcmread(path, stop_before_pixels=True).SegmentationType == "LABELMAP"
    back, _ = read_dicom_seg(path, case.folder)
    np.testing.assert_array_equal(back.array, case.label_map.array)


def test_frames_without_references_are_placed_by_position(derived_case, tmp_path):
    case = derived_case("mr-itk", "oblique")
    ds = pydicom.dcmread(write_seg(case, tmp_path / "seg.dcm"))
    for groups in ds.PerFrameFunctionalGroupsSequence:
        del groups.DerivationImageSequence
    ds.save_as(tmp_path / "unreferenced.dcm")
    back, _ = read_dicom_seg(tmp_path / "unreferenced.dcm", case.folder)
    np.testing.assert_array_equal(back.array, case.label_map.array)


def test_a_frame_off_its_referenced_slice_is_refused(derived_case, tmp_path):
    case = derived_case("mr-itk", "original")
    ds = pydicom.dcmread(write_seg(case, tmp_path / "seg.dcm"))
    position = ds.PerFrameFunctionalGroupsSequence[3].PlanePositionSequence[0]
    position.ImagePositionPatient = [float(v) + 0.5 for v in position.ImagePositionPatient]
    ds.save_as(tmp_path / "moved.dcm")
    with pytest.raises(MedAIError, match="frame 4 is at .* but its slice .* a SEG on another grid is not supported"):
        read_dicom_seg(tmp_path / "moved.dcm", case.folder)


def test_overlapping_segments_are_refused_unless_later_wins(derived_case, tmp_path):
    case = derived_case("mr-itk", "flipped")
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in case.source.metadata["dicom"]["files"]]
    masks = np.zeros(case.source.array.shape + (2,), bool)
    masks[2:5, 10:30, 5:25, 0] = True
    masks[3:6, 20:40, 15:35, 1] = True
    descriptions = [hd.seg.SegmentDescription(n, f"s{n}", hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
                                              hd.sr.CodedConcept("85756007", "SCT", "Tissue"), "MANUAL") for n in (1, 2)]
    seg = hd.seg.Segmentation(datasets, masks, "BINARY", descriptions, hd.UID(), 1, hd.UID(), 1, "x", "x", "1", "1")
    seg.save_as(tmp_path / "overlap.dcm")
    with pytest.raises(MedAIError, match="segments 's1' and 's2' overlap .*overlap='later'"):
        read_dicom_seg(tmp_path / "overlap.dcm", case.source)
    back, _ = read_dicom_seg(tmp_path / "overlap.dcm", case.source, overlap="later")
    np.testing.assert_array_equal(back.array, np.where(masks[..., 1], 2, np.where(masks[..., 0], 1, 0)))


def test_writer_refuses_what_it_cannot_write(derived_case, tmp_path):
    case = derived_case("mr-itk", "original")
    shifted = Volume(case.label_map.array, case.source.spacing, case.source.origin + [0.5, 0, 0], case.source.direction)
    with pytest.raises(MedAIError, match="not on the source series' grid"):
        write_dicom_seg(shifted, case.labels, case.source, tmp_path / "a.dcm", algorithm_name="m", algorithm_version="1")
    plain = Volume(case.source.array, case.source.spacing, case.source.origin, case.source.direction)
    with pytest.raises(MedAIError, match="was not read from a DICOM series"):
        write_dicom_seg(case.label_map, case.labels, plain, tmp_path / "a.dcm", algorithm_name="m", algorithm_version="1")
    with pytest.raises(MedAIError, match=r"value\(s\) \[5\] that no label describes"):
        write_dicom_seg(case.label_map, case.labels[:4], case.source, tmp_path / "a.dcm", algorithm_name="m",
                        algorithm_version="1")
    with pytest.raises(MedAIError, match="every segment is empty"):
        write_dicom_seg(case.label_map.with_array(np.zeros_like(case.label_map.array)), case.labels, case.source,
                        tmp_path / "a.dcm", algorithm_name="m", algorithm_version="1")
    assert not list(tmp_path.iterdir()), "nothing is left behind"


def test_reader_refuses_a_seg_of_other_images(derived_case, tmp_path):
    seg_path = write_seg(derived_case("mr-itk", "original"), tmp_path / "seg.dcm")
    other = derived_case("mr-colin27", "original")
    with pytest.raises(MedAIError, match="is in frame of reference .* it was made for other images"):
        read_dicom_seg(seg_path, other.folder)
    with pytest.raises(MedAIError, match="is a DICOM RT Structure Set Storage object, not a Segmentation"):
        read_dicom_seg(get_testdata_file("rtstruct.dcm"), other.folder)


def test_pydicom_liver_seg():
    """liver.dcm (pydicom-data; a Slicer-made BINARY SEG of 3 CT slices of 512 x 512, its CT not shipped).

    Checked: highdicom reads it; our metadata reader gives its segment (number, name, SRT codes, algorithm) as the
    file states them, and its colour as highdicom converts the CIELab value.
    """
    path = get_testdata_file("liver.dcm")
    assert path is not None, "liver.dcm comes with the pydicom-data package"
    seg = hd.seg.segread(path)
    assert seg.number_of_segments == 1 and seg.NumberOfFrames == 3
    described = seg.get_segment_description(1)
    [label] = read_dicom_seg_segments(path)
    assert (label.value, label.name) == (1, described.segment_label) == (1, "Liver")
    assert (label.terminology.category.value, label.terminology.category.scheme) == ("T-D0050", "SRT")
    assert (label.terminology.type.value, label.terminology.type.meaning) == ("T-62000", "Liver")
    assert label.extra == {"algorithm_type": "SEMIAUTOMATIC", "algorithm_name": "SlicerEditor"}
    rgb = hd.color.CIELabColor.from_dicom_value(seg.SegmentSequence[0].RecommendedDisplayCIELabValue).to_rgb(clip=True)
    assert label.color == tuple(c / 255 for c in rgb)


def test_pydicom_liver_seg_on_a_series_in_its_frame_of_reference(tmp_path):
    """liver.dcm placed by position on a stand-in series (blank voxels: its CT is not shipped) with the SEG's frame
    of reference and geometry, two slices wider on each side: it lands where highdicom's get_volume puts it."""
    path = get_testdata_file("liver.dcm")
    seg = hd.seg.segread(path)
    first = np.array([float(v) for v in seg.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient])
    spacing = float(seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing[0])
    blank = Volume(np.zeros((7, 512, 512), np.int16), [spacing, spacing, 1.0], first - [0, 0, 2.0])
    write_dicom_series(blank, tmp_path / "ct", frame_of_reference_uid=seg.FrameOfReferenceUID)
    back, labels = read_dicom_seg(path, tmp_path / "ct")
    reference = seg.get_volume(combine_segments=True)
    assert [label.name for label in labels] == ["Liver"]
    assert np.count_nonzero(back.array) == np.count_nonzero(reference.array) == 107098
    index = np.argwhere(reference.array)
    lps = (np.column_stack([index, np.ones(len(index))]) @ reference.affine.T)[:, :3]
    i, j, k = np.round(back.ijk_indices(lps)).astype(int).T
    assert (back.array[k, j, i] == 1).all()
    assert set(np.unique(k)) == {2, 3, 4}
    with pytest.raises(MedAIError, match="frame of reference"):
        other = Volume(np.zeros((7, 512, 512), np.int16), [spacing, spacing, 1.0], first - [0, 0, 2.0])
        write_dicom_series(other, tmp_path / "other")
        read_dicom_seg(path, read_dicom(tmp_path / "other"))


def test_enhanced_multiframe_source(tmp_path):
    """pydicom's eCT_Supplemental.dcm: one enhanced CT file of 2 frames, stored against the slice normal, so K
    order is the reverse of frame order; the SEG's frames must reference the right source frame."""
    from medai.labels import SegmentLabel

    source = read_dicom(get_testdata_file("eCT_Supplemental.dcm"))
    assert source.metadata["dicom"]["frames"] == [2, 1]
    label_map = np.zeros(source.array.shape, np.uint8)
    label_map[0, 100:140, 200:260] = 1
    label_map[1, 300, 301] = 2
    labels = [SegmentLabel(1, "block"), SegmentLabel(2, "dot")]
    path = write_dicom_seg(source.with_array(label_map), labels, source, tmp_path / "seg.dcm", algorithm_name="m",
                           algorithm_version="1")
    seg = hd.seg.segread(path)
    by_frame = seg.get_pixels_by_source_frame(source.metadata["dicom"]["SOPInstanceUIDs"][0], [1, 2],
                                              combine_segments=True)
    np.testing.assert_array_equal(by_frame, label_map[::-1])
    back, _ = read_dicom_seg(path, source)
    np.testing.assert_array_equal(back.array, label_map)
