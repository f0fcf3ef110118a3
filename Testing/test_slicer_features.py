"""extract_segment_features on real MRML: a real tumour outline (pyradiomics' breast1 MR) as a segment of a
segmentation node, on original, oblique and flipped geometries, gives the engine's features for the same image
and mask; a segment drawn on another grid (resampled) lands where it is in space; overlapping segments stay whole.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import PYRADIOMICS_DATA, geometry_variants
from medai import MedAIError, Volume
from medai.features import FEATURE_NAMES, extract_features
from medai.io import read_volume
from medai.labels import SegmentLabel
from medai.slicer import extract_segment_features, init_headless, node_from_volume, segmentation_node_from_labels
from medai.slicer.features import table_features

TUMOUR = SegmentLabel(1, "Tumour", (0.9, 0.3, 0.2))
RIM = SegmentLabel(2, "Rim", (0.2, 0.6, 0.9))


@pytest.fixture(scope="module")
def breast1() -> tuple[Volume, Volume]:
    return read_volume(PYRADIOMICS_DATA / "breast1_image.nrrd"), read_volume(PYRADIOMICS_DATA / "breast1_label.nrrd")


def assert_same_features(table: dict[str, float], expected: dict[str, float]) -> None:
    assert list(table) == list(FEATURE_NAMES)
    for name in FEATURE_NAMES:
        assert table[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-12), name


@pytest.mark.parametrize("variant", ["original", "oblique", "flipped"])
def test_segment_features_equal_the_engine(breast1, variant):
    scene = init_headless()
    image = geometry_variants(breast1[0])[variant]
    mask = geometry_variants(breast1[1])[variant]
    volume_node = node_from_volume(image, f"breast1 {variant}", scene)
    seg_node = segmentation_node_from_labels(mask.array.astype(np.uint8), [TUMOUR], volume_node)
    segment_id = seg_node.GetSegmentation().GetSegmentIdBySegmentName("Tumour")
    table = extract_segment_features(volume_node, seg_node, segment_id)
    assert table.GetName() == "Tumour features" and table.GetScene() is scene
    assert table.GetNumberOfRows() == len(FEATURE_NAMES)
    assert_same_features(table_features(table), extract_features(image, mask))


def test_overlapping_segment_stays_whole(breast1):
    """A second segment covering part of the tumour (exported alone, it does not cut the first one)."""
    from scipy import ndimage

    scene = init_headless()
    image, mask = geometry_variants(breast1[0])["oblique"], geometry_variants(breast1[1])["oblique"]
    tumour = mask.array == 1
    rim = ndimage.binary_dilation(tumour, iterations=2) & ~ndimage.binary_erosion(tumour, iterations=1)
    volume_node = node_from_volume(image, "breast1", scene)
    seg_node = segmentation_node_from_labels(tumour.astype(np.uint8), [TUMOUR], volume_node)
    rim_node = segmentation_node_from_labels(rim.astype(np.uint8) * 2, [RIM], volume_node)
    seg_node.GetSegmentation().CopySegmentFromSegmentation(rim_node.GetSegmentation(), "Rim")
    segmentation = seg_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 2
    tumour_id, rim_id = (segmentation.GetSegmentIdBySegmentName(n) for n in ("Tumour", "Rim"))
    assert_same_features(table_features(extract_segment_features(volume_node, seg_node, tumour_id)),
                         extract_features(image, mask))
    rim_table = table_features(extract_segment_features(volume_node, seg_node, rim_id))
    assert rim_table["original_shape_VoxelVolume"] == pytest.approx(rim.sum() * np.prod(image.spacing))


def test_segment_drawn_on_another_grid_lands_in_place(breast1):
    """A segmentation made on a flipped copy of the image's grid (same voxel centres, J reversed): Slicer's
    export puts every voxel back where it is in space, so the features are the engine's on the original."""
    scene = init_headless()
    image, mask = breast1
    flipped = geometry_variants(image)["flipped"]
    j_reversed = Volume(mask.array[:, ::-1, :].copy(), mask.spacing,
                        mask.lps_points([[0, mask.array.shape[1] - 1, 0]])[0], flipped.direction)
    volume_node = node_from_volume(image, "breast1", scene)
    other_grid = node_from_volume(j_reversed.with_array(np.zeros_like(j_reversed.array)), "drawn on", scene)
    seg_node = segmentation_node_from_labels(j_reversed.array.astype(np.uint8), [TUMOUR], other_grid)
    segment_id = seg_node.GetSegmentation().GetSegmentIdBySegmentName("Tumour")
    table = extract_segment_features(volume_node, seg_node, segment_id)
    assert_same_features(table_features(table), extract_features(image, mask))


def test_unknown_or_empty_segment_is_a_one_line_error(breast1):
    scene = init_headless()
    image, mask = breast1
    volume_node = node_from_volume(image, "breast1", scene)
    seg_node = segmentation_node_from_labels(mask.array.astype(np.uint8), [TUMOUR, RIM], volume_node)
    with pytest.raises(MedAIError, match="has no segment 'nope'"):
        extract_segment_features(volume_node, seg_node, "nope")
    rim_id = seg_node.GetSegmentation().GetSegmentIdBySegmentName("Rim")
    with pytest.raises(MedAIError, match="'Rim' is empty") as error:
        extract_segment_features(volume_node, seg_node, rim_id)
    assert "\n" not in str(error.value)
