"""Label map + labels <-> segmentation node on real MRML, closed surfaces, and .seg.nrrd files read back by
SimpleITK, slicerio and Slicer itself, on original, oblique, flipped and anisotropic grids."""

import nrrd
import numpy as np
import pytest
import slicer
import slicerio
import vtk
from vtkmodules.util.numpy_support import vtk_to_numpy

from conftest import COLIN27_BET, crop, geometry_variants
from medai import MedAIError, Volume
from medai.io import read_volume
from medai.labels import Code, SegmentLabel, Terminology
from medai.resample import resample_to_grid
from medai.slicer import (
    labels_from_segmentation_node,
    load_segmentation_node,
    node_from_volume,
    save_segmentation_node,
    segmentation_node_from_labels,
    volume_from_node,
)

ANATOMY = Code("123037004", "SCT", "Anatomical Structure")
BRAIN = Terminology(ANATOMY, Code("12738006", "SCT", "Brain"))
LABELS = [
    SegmentLabel(1, "Brain", (0.9, 0.6, 0.5), BRAIN),
    SegmentLabel(2, "Left frontal lobe", (0.2, 0.7, 0.3),
                 Terminology(ANATOMY, Code("83251001", "SCT", "Frontal lobe"), Code("7771000", "SCT", "Left"))),
    SegmentLabel(3, "Ventricle (absent here)", (0.1, 0.3, 0.9), Terminology(ANATOMY, Code("35764002", "SCT", "Brain ventricle"))),
]
BRAIN_ENTRY = ("Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~SCT^12738006^Brain"
               "~^^~Anatomic codes - DICOM master list~^^~^^")
START, SIZE = (10, 100, 50), (32, 40, 48)  # a crop across the brain's edge


@pytest.fixture(scope="module")
def head_and_labels(colin27) -> tuple[Volume, Volume]:
    """A real crop of colin27 and its label map: 1 brain, 2 an off-centre block of it; label 3 stays empty."""
    mask = read_volume(COLIN27_BET)
    labels = (crop(mask, START, SIZE).array > 0).astype(np.uint8)
    block = np.zeros(labels.shape, bool)
    block[14:26, 4:18, 26:44] = True
    labels[block & (labels == 1)] = 2
    head = crop(colin27, START, SIZE)
    return head, head.with_array(labels)


@pytest.fixture(params=["original", "oblique", "flipped", "anisotropic"])
def case(request, head_and_labels):
    """(reference volume node, label map Volume on its grid) for one geometry variant."""
    head, labels = head_and_labels
    name = request.param
    reference = node_from_volume(geometry_variants(head)[name], f"head-{name}")
    return reference, geometry_variants(labels)[name]


def test_label_map_lands_back_on_the_reference_grid(case):
    reference, labels = case
    node = segmentation_node_from_labels(labels, LABELS, reference, "brain")
    for ref in (reference, volume_from_node(reference)):  # a node or a Volume as the reference
        back, back_labels = labels_from_segmentation_node(node, ref)
        assert back.same_grid(labels, tol=1e-9)
        np.testing.assert_array_equal(back.array, labels.array)
        assert back_labels == LABELS
    segmentation = node.GetSegmentation()
    assert [segmentation.GetNthSegment(i).GetName() for i in range(3)] == [lb.name for lb in LABELS]
    assert segmentation.GetNumberOfLayers() == 1
    assert node.GetDisplayNode() is not None
    assert node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole()) is reference
    for label in LABELS:  # slicer.util reads each segment through the headless slicer.modules namespace
        segment_id = segmentation.GetSegmentIdBySegmentName(label.name)
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(node, segment_id, reference)
        np.testing.assert_array_equal(mask, labels.array == label.value)


def test_a_bare_array_works_too_and_labels_without_terminology_get_slicers_default(case):
    reference, labels = case
    plain = [SegmentLabel(1, "Brain", (1.0, 0.0, 0.0)), SegmentLabel(2, "Block", (0.0, 1.0, 0.0))]
    node = segmentation_node_from_labels(labels.array, plain, reference)
    back, back_labels = labels_from_segmentation_node(node, reference)
    np.testing.assert_array_equal(back.array, labels.array)
    assert [(b.value, b.name, b.color) for b in back_labels] == [(p.value, p.name, p.color) for p in plain]
    tissue = Code("85756007", "SCT", "Tissue")
    assert all(b.terminology == Terminology(tissue, tissue) for b in back_labels)


def enclosed_volume_and_centroid(surface) -> tuple[float, np.ndarray]:
    """Volume (mm3, sign dropped: Slicer orients triangles inward on left-handed grids) and centroid of a closed mesh."""
    triangles = vtk.vtkTriangleFilter()
    triangles.SetInputData(surface)
    triangles.Update()
    points = vtk_to_numpy(triangles.GetOutput().GetPoints().GetData()).astype(float)
    a, b, c = (points[ids] for ids in vtk_to_numpy(triangles.GetOutput().GetPolys().GetConnectivityArray()).reshape(-1, 3).T)
    signed = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6  # tetrahedra from the origin
    return abs(signed.sum()), (signed[:, None] * (a + b + c) / 4).sum(axis=0) / signed.sum()


def test_closed_surface_is_made_on_request_and_covers_the_label(case):
    reference, labels = case
    assert not segmentation_node_from_labels(labels, LABELS, reference).GetSegmentation().ContainsRepresentation("Closed surface")
    node = segmentation_node_from_labels(labels, LABELS, reference, closed_surface=True)
    segmentation = node.GetSegmentation()
    assert segmentation.ContainsRepresentation("Closed surface")
    voxel = float(np.max(labels.spacing))
    for label in LABELS[:2]:
        surface = node.GetClosedSurfaceInternalRepresentation(segmentation.GetSegmentIdBySegmentName(label.name))
        bounds = np.array(surface.GetBounds()).reshape(3, 2)
        ras = labels.lps_points(np.argwhere(labels.array == label.value)[:, ::-1]) * [-1, -1, 1]
        extent = np.c_[ras.min(axis=0), ras.max(axis=0)]  # voxel centres; the surface lies within half a voxel
        np.testing.assert_allclose(bounds, extent, atol=voxel, err_msg=label.name)
    brain = node.GetClosedSurfaceInternalRepresentation(segmentation.GetSegmentIdBySegmentName("Brain"))
    volume, centroid = enclosed_volume_and_centroid(brain)
    ras = labels.lps_points(np.argwhere(labels.array == 1)[:, ::-1]) * [-1, -1, 1]
    assert volume == pytest.approx(len(ras) * np.prod(labels.spacing), rel=0.05)
    assert np.linalg.norm(centroid - ras.mean(axis=0)) < voxel / 4  # no half-voxel shift, no flip
    empty = node.GetClosedSurfaceInternalRepresentation(segmentation.GetSegmentIdBySegmentName(LABELS[2].name))
    assert empty.GetNumberOfPoints() == 0


def test_seg_nrrd_reads_back_in_simpleitk_slicerio_and_slicer(case, tmp_path):
    reference, labels = case
    node = segmentation_node_from_labels(labels, LABELS, reference, "brain")
    path = save_segmentation_node(node, tmp_path / "brain.seg.nrrd")

    # SimpleITK: the stored block (maybe a cropped extent) sits on the reference grid with the label values
    stored = read_volume(path)
    corners = np.array([[0, 0, 0], [v - 1 for v in stored.size_ijk]])
    in_reference = labels.ijk_indices(stored.lps_points(corners))
    np.testing.assert_allclose(in_reference, np.round(in_reference), atol=1e-6)
    np.testing.assert_array_equal(resample_to_grid(stored, labels, "nearest").array, labels.array)

    # slicerio: names, colours, label values, terminology strings and voxels in physical space
    seg = slicerio.read_segmentation(str(path))
    assert [(s["name"], s["labelValue"]) for s in seg["segments"]] == [(lb.name, lb.value) for lb in LABELS]
    np.testing.assert_allclose([s["color"] for s in seg["segments"]], [lb.color for lb in LABELS], atol=1e-6)
    assert [slicerio.segmentation.terminology_entry_to_string(s["terminology"]) for s in seg["segments"]] == [
        lb.terminology.to_slicer_string() for lb in LABELS]
    from_slicerio = Volume.from_ijk_to_ras(seg["voxels"].transpose(2, 1, 0), np.diag([-1.0, -1, 1, 1]) @ seg["ijkToLPS"])
    np.testing.assert_array_equal(resample_to_grid(from_slicerio, labels, "nearest").array, labels.array)

    # the raw tag in the file: Slicer's terminology entry format
    header = nrrd.read_header(str(path))
    assert header["Segment0_Tags"].split("|")[0] == f"TerminologyEntry:{BRAIN_ENTRY}"

    # Slicer: load_segmentation_node gives back the same label map and labels
    back, back_labels = labels_from_segmentation_node(load_segmentation_node(path), reference)
    np.testing.assert_array_equal(back.array, labels.array)
    assert back_labels == LABELS


def test_seg_nrrd_cropped_to_its_content_reads_back_in_place(case, tmp_path):
    """Slicer can save only the extent that holds segments: readers must place it in physical space."""
    reference, labels = case
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(tmp_path / "cropped.seg.nrrd"))
    storage.CropToMinimumExtentOn()
    assert storage.WriteData(segmentation_node_from_labels(labels, LABELS, reference))
    stored = read_volume(tmp_path / "cropped.seg.nrrd")
    assert stored.array.size < labels.array.size
    np.testing.assert_array_equal(resample_to_grid(stored, labels, "nearest").array, labels.array)
    back, back_labels = labels_from_segmentation_node(load_segmentation_node(tmp_path / "cropped.seg.nrrd"), reference)
    np.testing.assert_array_equal(back.array, labels.array)
    assert back_labels == LABELS


def test_transformed_reference_keeps_segmentation_in_place(head_and_labels):
    """Under a linear parent transform, the segmentation follows the reference (world grid in, world grid out)."""
    head, labels = head_and_labels
    reference = node_from_volume(head, "moved head")
    transform = reference.GetScene().AddNewNodeByClass("vtkMRMLLinearTransformNode")
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(
        np.array([[0.0, -1, 0, 12], [1, 0, 0, -3], [0, 0, 1, 7], [0, 0, 0, 1]])))
    reference.SetAndObserveTransformNodeID(transform.GetID())
    world = volume_from_node(reference)
    node = segmentation_node_from_labels(world.with_array(labels.array), LABELS, reference)
    assert node.GetParentTransformNode() is transform
    for ref in (reference, world):
        back, _ = labels_from_segmentation_node(node, ref)
        assert back.same_grid(world, tol=1e-9)
        np.testing.assert_array_equal(back.array, labels.array)
    with pytest.raises(MedAIError, match="under a transform"):
        save_segmentation_node(node, "/tmp/never-written.seg.nrrd")


def test_label_maps_that_do_not_fit_are_refused(head_and_labels):
    head, labels = head_and_labels
    reference = node_from_volume(head, "head")
    shifted = Volume(labels.array, labels.spacing, labels.origin + [0.5, 0, 0], labels.direction)
    with pytest.raises(MedAIError, match="not on the grid"):
        segmentation_node_from_labels(shifted, LABELS, reference)
    with pytest.raises(MedAIError, match="shape"):
        segmentation_node_from_labels(labels.array[1:], LABELS, reference)
    with pytest.raises(MedAIError, match=r"values \[2\] that no label"):
        segmentation_node_from_labels(labels, LABELS[:1], reference)
    with pytest.raises(MedAIError, match="integers"):
        segmentation_node_from_labels(labels.array.astype(np.float32), LABELS, reference)
    with pytest.raises(MedAIError, match="distinct"):
        segmentation_node_from_labels(labels, [*LABELS, LABELS[0]], reference)


def test_overlapping_segments_in_separate_layers_are_numbered_in_order(case):
    """Segments drawn in Slicer may overlap (one layer each, all label value 1): numbered 1..N, later ones on top."""
    reference, labels = case
    node = reference.GetScene().AddNewNodeByClass("vtkMRMLSegmentationNode", "drawn")
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    assert labels_from_segmentation_node(node, reference)[1] == []
    for name, mask in (("whole brain", labels.array >= 1), ("block", labels.array == 2)):
        segment_id = node.GetSegmentation().AddEmptySegment(name, name)
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask.astype(np.uint8), node, segment_id, reference)
    assert node.GetSegmentation().GetNumberOfLayers() == 2
    back, back_labels = labels_from_segmentation_node(node, reference)
    assert [(b.value, b.name) for b in back_labels] == [(1, "whole brain"), (2, "block")]
    np.testing.assert_array_equal(back.array, labels.array)
