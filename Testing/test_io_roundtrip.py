"""Every writer and reader keeps the voxels exactly and the geometry in physical space.

Real images (Colin27, the ITK T1) under every geometry variant (original, oblique, flipped with det < 0,
anisotropic), through every format. Tolerances, in mm at the image corners:

* NRRD and MetaImage store geometry as full-precision text: 1e-9 mm.
* NIfTI stores it as float32 (about 6e-8 relative), so over a 250 mm image about 1e-5 mm: 1e-4 mm is allowed
  for NIfTI only because of that format limit.
* DICOM stores positions and cosines as decimal strings; the writer uses all 16 characters (about 1e-10 mm
  for positions, 1e-13 for cosines, so 3e-11 mm over 250 mm): 1e-6 mm.

Round trips alone would hide a mistake made twice (in a writer and its reader), so the files are also read
by independent readers: pynrrd, nibabel, pydicom and SimpleITK's GDCM series reader.
"""

from __future__ import annotations

import nibabel
import nrrd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import assert_same_physical, geometry_variants
from medai.io import read_volume, write_volume
from medai.io.dicom.series.write import write_dicom_series
from medai.sitk_image import volume_from_sitk

ITK_FORMATS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
TOLERANCE_MM = {".nii.gz": 1e-4, ".nii": 1e-4, "dicom": 1e-6}
EXACT_MM = 1e-9
VARIANTS = ("original", "oblique", "flipped", "anisotropic")


@pytest.fixture(scope="module")
def images(colin27_crop, itk_t1):
    return {"colin27": colin27_crop, "itk_t1": itk_t1}


def write_and_read(volume, tmp_path, fmt):
    if fmt == "dicom":
        write_dicom_series(volume, tmp_path / "series", modality="MR")
        return read_volume(tmp_path / "series")
    return read_volume(write_volume(volume, tmp_path / f"image{fmt}"))


@pytest.mark.parametrize("fmt", ITK_FORMATS + ("dicom",))
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("image", ["colin27", "itk_t1"])
def test_round_trip_keeps_voxels_and_physical_geometry(images, image, variant, fmt, tmp_path):
    volume = geometry_variants(images[image])[variant]
    back = write_and_read(volume, tmp_path, fmt)
    assert_same_physical(volume, back, tol_mm=TOLERANCE_MM.get(fmt, EXACT_MM))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"staging files left behind: {leftovers}"


def test_full_colin27_through_nifti_and_dicom(colin27, tmp_path):
    """The whole 181-slice image, flipped (det < 0): the DICOM reader reverses K, physically the same."""
    flipped = geometry_variants(colin27)["flipped"]
    assert_same_physical(flipped, read_volume(write_volume(flipped, tmp_path / "colin.nii.gz")), tol_mm=1e-4)
    files = write_dicom_series(flipped, tmp_path / "colin", modality="MR")
    assert len(files) == 181
    back = read_volume(tmp_path / "colin")
    assert_same_physical(flipped, back, tol_mm=1e-6)
    assert np.linalg.det(back.direction) > 0  # the reader's documented convention: K along the slice normal


@pytest.mark.parametrize("variant", VARIANTS)
def test_nrrd_header_read_by_pynrrd_holds_exact_lps_geometry(colin27_crop, variant, tmp_path):
    volume = geometry_variants(colin27_crop)[variant]
    header = nrrd.read_header(str(write_volume(volume, tmp_path / "image.nrrd")))
    assert header["space"] == "left-posterior-superior"
    # pynrrd gives one row per axis (I, J, K): the columns of direction @ diag(spacing)
    np.testing.assert_allclose(header["space directions"], (volume.direction @ np.diag(volume.spacing)).T, atol=1e-12)
    np.testing.assert_allclose(header["space origin"], volume.origin, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_nifti_keeps_qform_and_sform_read_by_nibabel(colin27_crop, variant, tmp_path):
    """Both transforms are set and agree with the volume; a det < 0 direction is stored with qfac = -1."""
    volume = geometry_variants(colin27_crop)[variant]
    image = nibabel.load(write_volume(volume, tmp_path / "image.nii.gz"))
    qform, qcode = image.get_qform(coded=True)
    sform, scode = image.get_sform(coded=True)
    assert qcode > 0 and scode > 0
    np.testing.assert_allclose(qform, volume.ijk_to_ras_matrix(), atol=1e-4)
    np.testing.assert_allclose(sform, volume.ijk_to_ras_matrix(), atol=1e-4)
    assert image.header["pixdim"][0] == (-1 if np.linalg.det(volume.direction) < 0 else 1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_dicom_series_read_by_simpleitk_gdcm_agrees(itk_t1, variant, tmp_path):
    """An independent DICOM reader (GDCM, sorting by position) sees the same voxels at the same places."""
    volume = geometry_variants(itk_t1)[variant]
    write_dicom_series(volume, tmp_path / "series", modality="MR", shuffle_names=True)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "series")))
    assert_same_physical(volume, volume_from_sitk(reader.Execute()), tol_mm=1e-6)


def test_dicom_writer_puts_each_axis_in_its_own_tag(itk_t1, tmp_path):
    """Row/column order is easy to swap twice; check the tags themselves on the anisotropic oblique variant."""
    volume = geometry_variants(itk_t1)["anisotropic"]
    files = write_dicom_series(volume, tmp_path / "series", modality="CT")
    for k in (0, 7, len(files) - 1):
        ds = pydicom.dcmread(files[k])
        s_i, s_j, s_k = volume.spacing
        np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [s_j, s_i], atol=1e-12)  # [row, column]
        np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient],
                                   np.r_[volume.direction[:, 0], volume.direction[:, 1]], atol=1e-12)
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], volume.lps_points([[0, 0, k]])[0], atol=1e-9)
        assert float(ds.SliceThickness) == pytest.approx(s_k) and float(ds.SpacingBetweenSlices) == pytest.approx(s_k)
        assert (ds.Rows, ds.Columns) == volume.array.shape[1:]
        np.testing.assert_array_equal(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept), volume.array[k])


def test_nifti_keeps_nan_voxels(tmp_path, colin27_crop):
    """ITK's NIfTI reader returns NaN as 0; the engine restores them so input checks can see them."""
    from medai.io import read_volume, write_volume

    array = colin27_crop.array.astype(np.float32)
    array[3, 4, 5:9] = np.nan
    for name, volume in geometry_variants(colin27_crop.with_array(array)).items():
        back = read_volume(write_volume(volume, tmp_path / f"{name}.nii.gz"))
        np.testing.assert_array_equal(np.isnan(back.array), np.isnan(array), err_msg=name)
        np.testing.assert_array_equal(np.nan_to_num(back.array), np.nan_to_num(array), err_msg=name)
