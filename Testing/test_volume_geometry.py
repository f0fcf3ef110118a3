"""The one geometry convention and its conversions to Slicer and MONAI."""

import numpy as np

from medai import Volume
from conftest import geometry_variants


def test_ijk_to_ras_round_trip_is_exact(colin27_crop):
    for name, v in geometry_variants(colin27_crop).items():
        m = v.ijk_to_ras_matrix()
        back = Volume.from_ijk_to_ras(v.array, m)
        np.testing.assert_allclose(back.spacing, v.spacing, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(back.origin, v.origin, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(back.direction, v.direction, atol=1e-12, err_msg=name)


def test_ijk_to_ras_maps_voxels_to_ras_positions(colin27_crop):
    """RAS of a voxel = LPS with the first two coordinates negated, for oblique and flipped grids."""
    for name, v in geometry_variants(colin27_crop).items():
        ijk = np.array([[3, 5, 7], [0, 0, 0], [10.5, 2.25, 1]])
        lps = v.lps_points(ijk)
        ras = (v.ijk_to_ras_matrix() @ np.c_[ijk, np.ones(3)].T).T[:, :3]
        np.testing.assert_allclose(ras, lps * [-1, -1, 1], atol=1e-9, err_msg=name)
        np.testing.assert_allclose(v.ijk_indices(lps), ijk, atol=1e-9, err_msg=name)


def test_monai_convention_matches_monai_loader(tmp_path, colin27_crop):
    """Our to_monai() equals what MONAI's own LoadImage gives for the same file, oblique and flipped."""
    from monai.transforms import LoadImage

    from medai.io import write_volume

    for name, v in geometry_variants(colin27_crop).items():
        path = write_volume(v, tmp_path / f"{name}.nii.gz")
        image = LoadImage(image_only=True, reader="NibabelReader")(str(path))
        array_ijk, affine = v.to_monai()
        np.testing.assert_array_equal(np.asarray(image), array_ijk, err_msg=name)
        np.testing.assert_allclose(np.asarray(image.affine), affine, atol=1e-5, err_msg=name)
        back = Volume.from_monai(np.asarray(image), np.asarray(image.affine))
        assert back.same_grid(v, tol=1e-4), name  # NIfTI keeps float32 geometry
