"""Saliency maps on the input's exact grid, checked in millimetres: the same physical image stored with another
voxel order (flipped, det < 0) or under an oblique direction gives the same map at the same LPS positions; Grad-CAM
(torch) and occlusion (ONNX Runtime) on real images; 2D images (a PNG, a DICOM slice).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_same_physical, crop, rotation
from medai import Volume
from medai.pipeline.classify import Classifier

ITK_DATA = "/usr/share/doc/insighttoolkit5-examples/examples/Data"


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier("image-type", device="cpu", engine="torch")


@pytest.fixture(scope="module")
def t1_crop(itk_t1) -> Volume:
    """A real MR block of 96x40x48 voxels (I x J x K; J is the T1's axial axis)."""
    return crop(itk_t1, (6, 40, 16), (48, 40, 96))


def reordered(volume: Volume, axis_kji: int) -> Volume:
    """The same physical image with its voxels stored in reverse along one axis: direction column negated (det < 0)."""
    ijk = 2 - axis_kji
    last = np.zeros(3)
    last[ijk] = volume.array.shape[axis_kji] - 1
    direction = volume.direction.copy()
    direction[:, ijk] *= -1
    return Volume(np.flip(volume.array, axis_kji).copy(), volume.spacing, volume.lps_points(last)[0], direction)


def check_map(saliency: Volume, volume: Volume) -> None:
    assert saliency.same_grid(volume, tol=1e-9), "the map is not on the input's grid"
    assert saliency.array.dtype == np.float32
    assert saliency.array.min() >= 0 and saliency.array.max() == pytest.approx(1.0)
    assert saliency.array.std() > 0.05, "the map is (nearly) constant"


def test_grad_cam_of_a_real_volume_is_on_its_grid(classifier, t1_crop):
    result = classifier(t1_crop, saliency=True)
    check_map(result.saliency, t1_crop)
    assert result.saliency.metadata["saliency_of"] == result.label


@pytest.mark.parametrize("axis", [0, 1, 2], ids=["K", "J", "I"])
def test_a_flipped_copy_of_the_same_image_gives_the_same_map_in_millimetres(classifier, t1_crop, axis):
    flipped = reordered(t1_crop, axis)
    assert np.linalg.det(flipped.direction) < 0
    assert_same_physical(t1_crop, flipped)  # the same image, stored the other way round
    original = classifier(t1_crop, saliency=True)
    result = classifier(flipped, saliency=True)
    check_map(result.saliency, flipped)
    assert result.probabilities == pytest.approx(original.probabilities, abs=1e-6)
    assert_same_physical(original.saliency, result.saliency)


def test_an_oblique_input_carries_its_map_with_it(classifier, t1_crop):
    """Rotating the grid 23 degrees moves the image and its map together: voxel for voxel the same map."""
    oblique = Volume(t1_crop.array, t1_crop.spacing, t1_crop.origin + [3.25, -7.5, 11.125],
                     rotation([1, 2, 3], 23.0) @ t1_crop.direction)
    original = classifier(t1_crop, saliency=True).saliency
    result = classifier(oblique, saliency=True).saliency
    check_map(result, oblique)
    moved = Volume(original.array, oblique.spacing, oblique.origin, oblique.direction)
    assert_same_physical(moved, result)
    peak = np.unravel_index(np.argmax(result.array), result.array.shape)[::-1]
    assert np.allclose(oblique.lps_points([peak])[0],
                       oblique.lps_points([np.unravel_index(np.argmax(original.array), original.array.shape)[::-1]])[0])


def test_occlusion_on_an_engine_without_gradients(t1_crop):
    onnx = Classifier("image-type", device="cpu", engine="onnx")
    small = crop(t1_crop, (0, 18, 0), (48, 4, 96))  # four axial slices: occlusion runs per slice
    result = onnx(small, saliency=True)
    check_map(result.saliency, small)


def test_maps_of_2d_images_png_and_dicom(classifier):
    from pydicom.data import get_testdata_file

    from medai.io import read_volume

    for path in (f"{ITK_DATA}/FatMRISlice.png", get_testdata_file("CT_small.dcm")):
        image = read_volume(path)
        result = classifier(image, saliency=True)
        check_map(result.saliency, image)
