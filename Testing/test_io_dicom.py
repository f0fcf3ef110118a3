"""DICOM series and single files: sorting by position, refusing broken series, rescale, metadata, the writer."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

from conftest import assert_same_physical, geometry_variants, truncate
from medai import MedAIError, Volume
from medai.io import read_volume
from medai.io.dicom.series.read import read_dicom
from medai.io.dicom.series.write import write_dicom_series
from medai.sitk_image import volume_from_sitk

#: Decimal strings of 16 characters: see test_io_roundtrip.
DICOM_TOL_MM = 1e-6


def awkward_series(volume: Volume, folder: Path) -> list[Path]:
    """A valid series whose file names and instance numbers both disagree with slice order."""
    return write_dicom_series(volume, folder, shuffle_names=True, descending_instance_numbers=True, seed=7)


@pytest.mark.parametrize("variant", ["flipped", "oblique", "anisotropic"])
def test_series_is_sorted_by_position_not_names_or_instance_numbers(colin27_crop, variant, tmp_path):
    volume = geometry_variants(colin27_crop)[variant]
    files = awkward_series(volume, tmp_path / "series")
    assert [f.name for f in files] != sorted(f.name for f in files), "names should not follow slice order"
    back = read_dicom(tmp_path / "series")
    assert_same_physical(volume, back, tol_mm=DICOM_TOL_MM)
    # documented convention: K along the slice normal row x column, so a det < 0 volume comes back with K reversed
    assert np.linalg.det(back.direction) == pytest.approx(1.0)
    k_reversed = np.linalg.det(volume.direction) < 0
    assert back.metadata["dicom"]["files"] == [str(f) for f in (files[::-1] if k_reversed else files)]


def test_metadata_lists_uids_per_slice_in_k_order(colin27_crop, tmp_path):
    volume = geometry_variants(colin27_crop)["oblique"]
    awkward_series(volume, tmp_path / "series")
    meta = read_dicom(tmp_path / "series").metadata["dicom"]
    first = pydicom.dcmread(meta["files"][0])
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality", "SOPClassUID"):
        assert meta[keyword] == str(first.get(keyword)) and meta[keyword]
    heights = []
    for path, uid, frame in zip(meta["files"], meta["SOPInstanceUIDs"], meta["frames"]):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.SOPInstanceUID == uid and frame is None
        heights.append(np.array(ds.ImagePositionPatient, float) @ volume.direction[:, 2])
    assert np.all(np.diff(heights) > 0)


def test_two_series_in_one_folder_are_listed_and_one_can_be_picked(colin27_crop, itk_t1, tmp_path):
    (tmp_path / "study").mkdir()
    write_dicom_series(colin27_crop, tmp_path / "study" / "a", modality="MR", series_description="colin crop")
    write_dicom_series(itk_t1, tmp_path / "study" / "b", modality="MR", series_description="itk t1")
    uid_a = read_dicom(tmp_path / "study" / "a").metadata["dicom"]["SeriesInstanceUID"]
    uid_b = read_dicom(tmp_path / "study" / "b").metadata["dicom"]["SeriesInstanceUID"]
    with pytest.raises(MedAIError) as error:
        read_dicom(tmp_path / "study")
    message = str(error.value)
    assert str(tmp_path / "study") in message and "2 DICOM series" in message
    assert uid_a in message and uid_b in message and "colin crop" in message and "(32 files)" in message
    assert "\n" not in message
    assert_same_physical(itk_t1, read_dicom(tmp_path / "study", series_uid=uid_b), tol_mm=DICOM_TOL_MM)
    with pytest.raises(MedAIError, match="holds no series 1.2.3"):
        read_dicom(tmp_path / "study", series_uid="1.2.3")


def test_missing_slice_is_refused(colin27_crop, tmp_path):
    files = awkward_series(colin27_crop, tmp_path / "series")
    files[10].unlink()
    with pytest.raises(MedAIError, match=rf"is missing slices: a gap of 2 mm between {files[9].name} and {files[11].name}"):
        read_dicom(tmp_path / "series")


def test_unevenly_spaced_slices_are_refused(colin27_crop, tmp_path):
    volume = geometry_variants(colin27_crop)["oblique"]
    files = write_dicom_series(volume, tmp_path / "series")
    ds = pydicom.dcmread(files[5])
    ds.ImagePositionPatient = list(np.array(ds.ImagePositionPatient, float) + 0.3 * volume.direction[:, 2])
    ds.save_as(files[5])
    with pytest.raises(MedAIError, match=rf"unevenly spaced slices.*{files[5].name} lies 0.3 mm off"):
        read_dicom(tmp_path / "series")


def test_duplicate_positions_are_refused(colin27_crop, tmp_path):
    files = write_dicom_series(colin27_crop, tmp_path / "series")
    ds = pydicom.dcmread(files[3])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "series" / "copy.dcm")
    with pytest.raises(MedAIError, match="two images at the same position"):
        read_dicom(tmp_path / "series")


def test_mixed_orientations_are_refused(colin27_crop, tmp_path):
    files = write_dicom_series(colin27_crop, tmp_path / "series")
    ds = pydicom.dcmread(files[4])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0.9998, 0.02]
    ds.save_as(files[4])
    with pytest.raises(MedAIError, match=f"mixes image orientations .*{files[4].name}"):
        read_dicom(tmp_path / "series")


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_file_is_refused_by_name(colin27_crop, keep, tmp_path):
    """Cut in the pixel data, or inside the header (before the DICM magic)."""
    files = awkward_series(colin27_crop, tmp_path / "series")
    truncate(files[6], keep)
    with pytest.raises(MedAIError) as error:
        read_dicom(tmp_path / "series")
    assert str(error.value).startswith(f"{files[6]}: ")
    assert ("truncated" if keep == 0.5 else "not a readable DICOM file") in str(error.value)


def test_pydicoms_own_truncated_file_is_refused():
    path = get_testdata_file("MR_truncated.dcm")
    with pytest.raises(MedAIError, match="is truncated: its pixel data holds 8130 of 8192 bytes"):
        read_volume(path)


def test_other_files_in_the_folder_are_passed_over(colin27_crop, tmp_path):
    """A DICOMDIR, an RTSTRUCT, a text file and a file saved without preamble sit beside the series."""
    files = write_dicom_series(colin27_crop, tmp_path / "series")
    shutil.copy(get_testdata_file("DICOMDIR"), tmp_path / "series" / "DICOMDIR")
    shutil.copy(get_testdata_file("rtstruct.dcm"), tmp_path / "series" / "rtstruct.dcm")
    (tmp_path / "series" / "notes.txt").write_text("acquired on a Tuesday\n")
    (tmp_path / "series" / "LICENSE").write_text("not DICOM, no extension\n")
    bare = pydicom.dcmread(files[0])  # the first slice again, but as a bare dataset without meta header
    files[0].unlink()
    bare.preamble, bare.file_meta = None, pydicom.dataset.FileMetaDataset()
    pydicom.dcmwrite(tmp_path / "series" / "1.2.3.4", bare, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert (tmp_path / "series" / "1.2.3.4").read_bytes()[128:132] != b"DICM"
    assert_same_physical(colin27_crop, read_dicom(tmp_path / "series"), tol_mm=DICOM_TOL_MM)


def test_folder_with_only_non_image_dicom(tmp_path):
    shutil.copy(get_testdata_file("rtstruct.dcm"), tmp_path / "rtstruct.dcm")
    with pytest.raises(MedAIError, match="holds no DICOM images .*RT Structure Set Storage"):
        read_dicom(tmp_path)


def test_single_frame_ct_small_reads_as_one_slice():
    """pydicom's CT_small.dcm (shipped with pydicom): spacing, position, HU values, as GDCM reads it."""
    path = get_testdata_file("CT_small.dcm")
    volume = read_volume(path)
    ds = pydicom.dcmread(path)
    assert volume.array.shape == (1, 128, 128) and volume.array.dtype == np.int16
    np.testing.assert_allclose(volume.spacing, [0.661468, 0.661468, 5.0])
    np.testing.assert_allclose(volume.origin, [-158.135803, -179.035797, -75.699997])
    np.testing.assert_array_equal(volume.direction, np.eye(3))
    np.testing.assert_array_equal(volume.array[0], ds.pixel_array.astype(int) * int(ds.RescaleSlope) + int(ds.RescaleIntercept))
    gdcm = volume_from_sitk(sitk.ReadImage(path))
    assert_same_physical(gdcm, volume, tol_mm=1e-6)


def test_radiograph_without_position_uses_imager_pixel_spacing(colin27, tmp_path):
    """A projection image (no IPP/IOP, ImagerPixelSpacing only) is a one-slice volume at the origin."""
    files = write_dicom_series(Volume(colin27.array[90:91], [0.7, 0.4, 1.0]), tmp_path / "xray")
    ds = pydicom.dcmread(files[0])
    ds.ImagerPixelSpacing = ds.PixelSpacing
    for keyword in ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "SliceThickness", "SpacingBetweenSlices"):
        delattr(ds, keyword)
    ds.save_as(files[0])
    volume = read_volume(files[0])
    np.testing.assert_allclose(volume.spacing, [0.7, 0.4, 1.0])
    np.testing.assert_array_equal(volume.origin, 0)
    np.testing.assert_array_equal(volume.array, colin27.array[90:91])


def test_rescale_keeps_integers_exact_and_quantises_fractions(itk_t1, tmp_path):
    hounsfield = itk_t1.with_array(itk_t1.array.astype(np.int32) * 9 - 1024)  # -1024..1271, int16 range
    wide = itk_t1.with_array(itk_t1.array.astype(np.int32) * 200 - 30000)  # -30000..21000: needs an intercept
    fractions = itk_t1.with_array(itk_t1.array.astype(np.float32) / 7)
    back = read_dicom(write_dicom_series(hounsfield, tmp_path / "hu")[0].parent)
    assert back.array.dtype == np.int16
    assert_same_physical(hounsfield, back, tol_mm=DICOM_TOL_MM)
    back = read_dicom(write_dicom_series(wide, tmp_path / "wide")[0].parent)
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, wide.array)
    files = write_dicom_series(fractions, tmp_path / "fractions")
    slope = float(pydicom.dcmread(files[0]).RescaleSlope)
    back = read_dicom(tmp_path / "fractions")
    assert back.array.dtype == np.float32 and slope < 255 / 7 / 65000
    assert np.abs(back.array - fractions.array).max() <= slope / 2 * 1.0001


def test_writer_tags_and_instance_numbers(itk_t1, tmp_path):
    files = write_dicom_series(itk_t1, tmp_path / "mr", modality="MR", patient={"PatientName": "Doe^Jane", "PatientID": "42"},
                               series_description="T1", descending_instance_numbers=True)
    datasets = [pydicom.dcmread(f) for f in files]
    assert [ds.InstanceNumber for ds in datasets] == list(range(len(files), 0, -1))
    first = datasets[0]
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert first.SOPClassUID == pydicom.uid.MRImageStorage == first.file_meta.MediaStorageSOPClassUID
    assert (first.PatientName, first.PatientID, first.SeriesDescription, first.Modality) == ("Doe^Jane", "42", "T1", "MR")
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(files)
    assert len({(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID) for ds in datasets}) == 1
    assert first.PixelRepresentation == 1 and "RescaleSlope" not in first  # int16 stored as is; MR needs no rescale


def test_writer_refuses_and_leaves_nothing(colin27_crop, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(MedAIError, match="not an empty folder"):
        write_dicom_series(colin27_crop, tmp_path / "full")
    with pytest.raises(MedAIError, match="does not exist"):
        write_dicom_series(colin27_crop, tmp_path / "missing" / "series")
    with pytest.raises(MedAIError, match="NaN"):
        write_dicom_series(colin27_crop.with_array(np.full(colin27_crop.array.shape, np.nan, np.float32)), tmp_path / "nan")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    assert len(write_dicom_series(colin27_crop, tmp_path / "empty")) == 32  # an empty folder is fine


def enhanced_multiframe(files: list[Path], path: Path, frame_order: np.ndarray) -> None:
    """Pack single-frame slices into one enhanced MR file (functional groups), frames in ``frame_order``."""
    from pydicom.dataset import Dataset

    slices = [pydicom.dcmread(files[i]) for i in frame_order]
    ds = slices[0]
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.EnhancedMRImageStorage
    ds.NumberOfFrames = len(slices)
    shared = Dataset()
    shared.PixelMeasuresSequence = [Dataset()]
    shared.PixelMeasuresSequence[0].PixelSpacing = ds.PixelSpacing
    shared.PixelMeasuresSequence[0].SliceThickness = ds.SliceThickness
    shared.PlaneOrientationSequence = [Dataset()]
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = ds.ImageOrientationPatient
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for s in slices:
        group = Dataset()
        group.PlanePositionSequence = [Dataset()]
        group.PlanePositionSequence[0].ImagePositionPatient = s.ImagePositionPatient
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    for keyword in ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices", "ImageOrientationPatient", "ImagePositionPatient"):
        delattr(ds, keyword)
    ds.PixelData = b"".join(s.PixelData for s in slices)
    ds.save_as(path)


def test_enhanced_multiframe_file_reads_like_its_series(itk_t1, tmp_path):
    volume = geometry_variants(itk_t1)["anisotropic"]
    files = write_dicom_series(volume, tmp_path / "series", modality="MR")
    order = np.random.default_rng(3).permutation(len(files))
    enhanced_multiframe(files, tmp_path / "enhanced.dcm", order)
    back = read_volume(tmp_path / "enhanced.dcm")
    assert_same_physical(volume, back, tol_mm=DICOM_TOL_MM)
    frames = back.metadata["dicom"]["frames"]  # 1-based frame of each K slice
    assert sorted(frames) == list(range(1, len(files) + 1)) and frames != sorted(frames)
