"""PNG images as one-slice volumes: exact gray values, pixel size from pHYs, colour refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medai import MedAIError
from medai.io import read_volume


@pytest.fixture(scope="module")
def colin_slice(colin27) -> np.ndarray:
    """A real axial slice of Colin27 (uint8, 217 rows x 181 columns)."""
    return np.ascontiguousarray(colin27.array[90])


def test_gray_png_reads_exactly_with_1mm_pixels(colin_slice, tmp_path):
    Image.fromarray(colin_slice).save(tmp_path / "slice.png")
    volume = read_volume(tmp_path / "slice.png")
    assert volume.array.shape == (1, *colin_slice.shape) and volume.array.dtype == np.uint8
    np.testing.assert_array_equal(volume.array[0], colin_slice)
    np.testing.assert_array_equal(volume.spacing, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(volume.direction, np.eye(3))
    # row 0 is the top of the picture, I runs along a row
    np.testing.assert_array_equal(volume.lps_points([[180, 216, 0]])[0], [180.0, 216.0, 0.0])
    assert volume.metadata["pixel_size_from_file"] is False


def test_physical_pixel_size_comes_from_phys(colin_slice, tmp_path):
    """pHYs holds pixels per metre: 2000 across (0.5 mm), 4000 down (0.25 mm)."""
    Image.fromarray(colin_slice).save(tmp_path / "slice.png", dpi=(2000 * 0.0254, 4000 * 0.0254))
    volume = read_volume(tmp_path / "slice.png")
    np.testing.assert_allclose(volume.spacing, [0.5, 0.25, 1.0], rtol=1e-12)
    assert volume.metadata["pixel_size_from_file"] is True


def test_16_bit_png_keeps_its_values(colin_slice, tmp_path):
    values = colin_slice.astype(np.uint16) * 257
    Image.fromarray(values).save(tmp_path / "slice16.png")
    volume = read_volume(tmp_path / "slice16.png")
    assert volume.array.dtype == np.uint16
    np.testing.assert_array_equal(volume.array[0], values)


def test_gray_saved_as_rgb_is_read_exactly_but_colour_is_refused(colin_slice, tmp_path):
    Image.fromarray(colin_slice).convert("RGB").save(tmp_path / "gray_rgb.png")
    np.testing.assert_array_equal(read_volume(tmp_path / "gray_rgb.png").array[0], colin_slice)
    colour = np.dstack([colin_slice, colin_slice, 255 - colin_slice])
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(MedAIError, match="colour.png: is a colour image"):
        read_volume(tmp_path / "colour.png")
    rgba = np.dstack([colin_slice] * 3 + [np.full_like(colin_slice, 128)])
    Image.fromarray(rgba).save(tmp_path / "transparent.png")
    with pytest.raises(MedAIError, match="transparent pixels"):
        read_volume(tmp_path / "transparent.png")


def test_truncated_or_fake_png_is_refused(colin_slice, tmp_path):
    Image.fromarray(colin_slice).save(tmp_path / "slice.png")
    data = (tmp_path / "slice.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(MedAIError, match="cut.png: is not a readable PNG image"):
        read_volume(tmp_path / "cut.png")
    Image.fromarray(colin_slice).save(tmp_path / "really_jpeg.png", format="JPEG")
    with pytest.raises(MedAIError, match="really_jpeg.png: is a JPEG image, not PNG"):
        read_volume(tmp_path / "really_jpeg.png")
