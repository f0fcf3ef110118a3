"""The console API (MedAISeg's logic) on real MRML and real images: the node a user gets, and its accuracy."""

import numpy as np
import pytest

from medai.metrics import dice
from medai.slicer import (MedAISegLogic, init_headless, labels_from_segmentation_node, load_volume_node,
                          node_from_volume)
from conftest import COLIN27, ITK_T1, geometry_variants


@pytest.fixture(scope="module")
def logic():
    init_headless()
    return MedAISegLogic()


@pytest.mark.parametrize("path, floor, mask_fixture", [(COLIN27, 0.93, "colin27_brain_mask"),
                                                      (ITK_T1, 0.95, "itk_t1_brain_mask")], ids=["colin27", "itk-t1"])
def test_segment_volume_node_meets_dice_floor(logic, path, floor, mask_fixture, request):
    volume_node = load_volume_node(path)
    seg_node = logic.segment(volume_node, model="brain-extraction", closed_surface=True)
    assert seg_node.IsA("vtkMRMLSegmentationNode")
    assert seg_node.GetName() == f"{volume_node.GetName()} brain-extraction"
    assert seg_node.GetNodeReference("referenceImageGeometryRef") is volume_node
    segmentation = seg_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1
    segment = segmentation.GetNthSegment(0)
    assert segment.GetName() == "Brain"
    assert "SCT^12738006^Brain" in segment.GetTerminology()
    np.testing.assert_allclose(segment.GetColor(), (250 / 255, 250 / 255, 225 / 255), atol=1e-6)
    assert segmentation.ContainsRepresentation("Closed surface")
    label_map, labels = labels_from_segmentation_node(seg_node, volume_node)
    reference = request.getfixturevalue(mask_fixture)
    assert label_map.same_grid(reference, tol=1e-4)
    score = dice(label_map.array > 0, reference.array > 0)
    assert score >= floor, f"Dice {score:.4f} < {floor}"


def test_console_loop_over_volumes_keeps_inputs_and_names_outputs(logic, itk_t1):
    """A console loop: several volumes (one with an oblique, flipped geometry), each gets its own node on its grid."""
    variants = geometry_variants(itk_t1)
    nodes = [node_from_volume(variants[name], name=f"case-{name}") for name in ("original", "anisotropic")]
    before = [n.GetImageData().GetScalarRange() for n in nodes]
    segs = [logic.segment(node) for node in nodes]
    assert [s.GetName() for s in segs] == ["case-original brain-extraction", "case-anisotropic brain-extraction"]
    for node, seg, rng in zip(nodes, segs, before):
        assert node.GetImageData().GetScalarRange() == rng  # the input is untouched
        label_map, _ = labels_from_segmentation_node(seg, node)
        assert label_map.array.shape == itk_t1.array.shape
        assert label_map.array.any()


def test_console_exports_dicom_seg_rtstruct_and_meshes_of_a_dicom_volume(logic, itk_t1, tmp_path):
    """Segment a volume loaded from a DICOM series, then export SEG, RTSTRUCT and STL from the console API."""
    from medai.io.dicom.seg import read_dicom_seg
    from medai.io.dicom.series.write import write_dicom_series
    from medai.io.dicom.rtstruct import read_rtstruct
    from medai.slicer import export_dicom_seg, export_rtstruct, export_segmentation_meshes

    series = tmp_path / "series"
    write_dicom_series(itk_t1, series, modality="MR", shuffle_names=True)
    volume_node = load_volume_node(series)
    seg_node = logic.segment(volume_node)
    label_map, _ = labels_from_segmentation_node(seg_node, volume_node)
    seg_map, seg_labels = read_dicom_seg(export_dicom_seg(seg_node, tmp_path / "seg.dcm"), series)
    np.testing.assert_array_equal(seg_map.array > 0, label_map.array > 0)
    assert seg_labels[0].name == "Brain"
    import pydicom

    assert pydicom.dcmread(tmp_path / "seg.dcm").SegmentSequence[0].SegmentAlgorithmName == "Brain extraction (deepbet)"
    rt_map, _ = read_rtstruct(export_rtstruct(seg_node, tmp_path / "rt.dcm"), series)
    np.testing.assert_array_equal(rt_map.array > 0, label_map.array > 0)
    meshes = export_segmentation_meshes(seg_node, tmp_path / "mesh")
    assert [p.name for p in meshes] == ["Brain.stl"]
    # and both files load back as segmentation nodes on the volume's grid, equal to the original
    from medai.slicer import load_dicom_segmentation

    for path in (tmp_path / "seg.dcm", tmp_path / "rt.dcm"):
        back = load_dicom_segmentation(path, volume_node)
        back_map, back_labels = labels_from_segmentation_node(back, volume_node)
        np.testing.assert_array_equal(back_map.array > 0, label_map.array > 0, err_msg=path.name)
        assert back_labels[0].name == "Brain"


def test_dicom_export_of_a_non_dicom_volume_is_refused(logic, colin27_crop, tmp_path):
    from medai import MedAIError
    from medai.slicer import export_dicom_seg, segmentation_node_from_labels
    from medai.labels import SegmentLabel

    node = node_from_volume(colin27_crop, name="nifti")
    seg = segmentation_node_from_labels(colin27_crop.with_array((colin27_crop.array > 80).astype(np.uint8)),
                                        [SegmentLabel(1, "Bright")], node)
    with pytest.raises(MedAIError, match="was not loaded from a DICOM series"):
        export_dicom_seg(seg, tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()
