"""Segmentation node -> STL/OBJ from Slicer's own closed surfaces, on real MRML (slicer-core), for original,
oblique and flipped grids: the same vertices as Slicer's ExportSegmentsClosedSurfaceRepresentationToFiles and as
the engine's meshes, outward triangles, headers Slicer's model reader understands, parent transforms applied."""

from __future__ import annotations

import numpy as np
import pytest
import slicer
import vtk
from scipy.spatial import cKDTree
from vtkmodules.util.numpy_support import vtk_to_numpy

from conftest import COLIN27_BET, crop, geometry_variants, rotation
from medai import MedAIError, Volume
from medai.export import label_surfaces
from medai.export.mesh import signed_volume
from medai.io import read_volume
from medai.labels import SegmentLabel
from medai.slicer import node_from_volume, segmentation_node_from_labels
from medai.slicer.exports import export_segmentation_meshes

LABELS = [SegmentLabel(1, "Brain", (0.9, 0.6, 0.5)), SegmentLabel(2, "Left/right block", (0.2, 0.7, 0.3)),
          SegmentLabel(3, "Empty", (0.1, 0.3, 0.9))]
START, SIZE = (10, 100, 50), (32, 40, 48)


@pytest.fixture(scope="module")
def head_and_labels(colin27) -> tuple[Volume, Volume]:
    labels = (crop(read_volume(COLIN27_BET), START, SIZE).array > 0).astype(np.uint8)
    block = np.zeros(labels.shape, bool)
    block[14:26, 4:18, 26:44] = True
    labels[block & (labels == 1)] = 2
    head = crop(colin27, START, SIZE)
    return head, head.with_array(labels)


@pytest.fixture(params=["original", "oblique", "flipped"])
def case(request, head_and_labels):
    """(segmentation node, label map) for one geometry variant."""
    head, labels = head_and_labels
    reference = node_from_volume(geometry_variants(head)[request.param], f"head-{request.param}")
    label_map = geometry_variants(labels)[request.param]
    return segmentation_node_from_labels(label_map, LABELS, reference, name=f"Seg {request.param}"), label_map


def read_stl(path):
    reader = vtk.vtkSTLReader()
    reader.SetFileName(str(path))
    reader.MergingOff()
    reader.Update()
    return reader


def points_of(polydata) -> np.ndarray:
    return vtk_to_numpy(polydata.GetPoints().GetData()).astype(float)


def same_vertices(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> bool:
    return cKDTree(a).query(b)[0].max() < tol and cKDTree(b).query(a)[0].max() < tol


def test_same_surfaces_as_slicers_own_export_and_the_engine(case, tmp_path):
    node, label_map = case
    files = export_segmentation_meshes(node, tmp_path / "ours")
    assert [f.name for f in files] == ["Brain.stl", "Left_right_block.stl"], "empty segment skipped, names made safe"
    assert not node.GetSegmentation().ContainsRepresentation("Closed surface"), "the node is left as it was"
    # Slicer's own exporter names files <node>_<raw segment name>.stl: the "/" makes it write nothing, yet report success
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsClosedSurfaceRepresentationToFiles(str(tmp_path), node, None, "STL", True)
    assert sorted(p.name for p in tmp_path.glob("*.stl")) == [f"{node.GetName()}_Brain.stl", f"{node.GetName()}_Empty.stl"]
    engine = label_surfaces(label_map, LABELS)
    det = np.linalg.det(label_map.direction)
    for path, label in zip(files, LABELS):
        ours = read_stl(path)
        assert ours.GetHeader() == "MedAI output. SPACE=LPS"
        segment = node.GetSegmentation().GetSegment(node.GetSegmentation().GetSegmentIdBySegmentName(label.name))
        segment.SetName(f"segment{label.value}")  # a name Slicer's exporter can write
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(node.GetSegmentation().GetSegmentIdBySegment(segment))
        folder = tmp_path / f"slicer-{label.value}"
        folder.mkdir()
        assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsClosedSurfaceRepresentationToFiles(str(folder), node, ids, "STL", True)
        theirs = read_stl(next(folder.iterdir()))
        assert "SPACE=LPS" in theirs.GetHeader()
        assert ours.GetOutput().GetNumberOfPolys() == theirs.GetOutput().GetNumberOfPolys()
        assert same_vertices(points_of(ours.GetOutput()), points_of(theirs.GetOutput()))
        assert same_vertices(points_of(ours.GetOutput()), points_of(engine[label.name]))
        assert signed_volume(ours.GetOutput()) > 0, "outward on every grid"
        assert np.sign(signed_volume(theirs.GetOutput())) == np.sign(det), "Slicer's file is inside out when det < 0"


def test_merged_and_obj(case, tmp_path):
    node, _ = case
    merged, = export_segmentation_meshes(node, tmp_path / "m", merged=True)
    assert merged.name == f"{node.GetName().replace(' ', '_')}.stl"
    parts = export_segmentation_meshes(node, tmp_path / "p")
    assert read_stl(merged).GetOutput().GetNumberOfPolys() == sum(read_stl(p).GetOutput().GetNumberOfPolys() for p in parts)
    objs = export_segmentation_meshes(node, tmp_path / "o", fmt="obj", coordinates="RAS")
    for path, label in zip(objs, LABELS):
        assert "SPACE=RAS" in path.read_text()[:80]
        assert "Kd " + " ".join(f"{c:.6f}" for c in label.color) in path.with_suffix(".mtl").read_text()
    single, = export_segmentation_meshes(node, tmp_path / "brain.obj", fmt="obj", merged=True, segment_ids=[node.GetSegmentation().GetSegmentIdBySegmentName("Brain")])
    assert single.read_text().count("\no ") == 1


def test_slicer_reads_the_files_back_where_they_belong(case, tmp_path):
    """Slicer's model storage node honours the SPACE= header: LPS and RAS files load onto Slicer's own surface."""
    node, _ = case
    segment_id = node.GetSegmentation().GetSegmentIdBySegmentName("Brain")
    shown = vtk.vtkPolyData()
    slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentClosedSurfaceRepresentation(node, segment_id, shown)
    scene = node.GetScene()
    for coordinates in ("LPS", "RAS"):
        path, = export_segmentation_meshes(node, tmp_path / coordinates, coordinates=coordinates, segment_ids=[segment_id])
        model = scene.AddNewNodeByClass("vtkMRMLModelNode", f"brain-{coordinates}")
        storage = scene.AddNewNodeByClass("vtkMRMLModelStorageNode")
        storage.SetCoordinateSystem(slicer.vtkMRMLStorageNode.CoordinateSystemRAS if coordinates == "LPS" else slicer.vtkMRMLStorageNode.CoordinateSystemLPS)
        storage.SetFileName(str(path))
        assert storage.ReadData(model)
        assert storage.GetCoordinateSystem() == getattr(slicer.vtkMRMLStorageNode, f"CoordinateSystem{coordinates}"), "taken from the header"
        assert same_vertices(points_of(model.GetPolyData()), points_of(shown))


def test_parent_transform_is_applied(head_and_labels, tmp_path):
    head, labels = head_and_labels
    reference = node_from_volume(head, "head-transformed")
    node = segmentation_node_from_labels(labels, LABELS, reference, name="moved")
    plain, = export_segmentation_meshes(node, tmp_path / "plain", segment_ids=[node.GetSegmentation().GetSegmentIdBySegmentName("Brain")])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation([0, 1, 1], 30)
    matrix[:3, 3] = [12.5, -4.0, 7.25]  # RAS
    transform = node.GetScene().AddNewNodeByClass("vtkMRMLLinearTransformNode")
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(matrix))
    node.SetAndObserveTransformNodeID(transform.GetID())
    moved, = export_segmentation_meshes(node, tmp_path / "moved", segment_ids=[node.GetSegmentation().GetSegmentIdBySegmentName("Brain")])
    flip = np.diag([-1.0, -1.0, 1.0])
    expected = (points_of(read_stl(plain).GetOutput()) @ flip @ matrix[:3, :3].T + matrix[:3, 3]) @ flip
    np.testing.assert_allclose(points_of(read_stl(moved).GetOutput()), expected, atol=1e-3)


def test_refusals(case, tmp_path):
    node, _ = case
    with pytest.raises(MedAIError, match="no segments"):
        export_segmentation_meshes(node, tmp_path / "x", segment_ids=["nope"])
    empty_id = node.GetSegmentation().GetSegmentIdBySegmentName("Empty")
    with pytest.raises(MedAIError, match="no non-empty segment"):
        export_segmentation_meshes(node, tmp_path / "x", segment_ids=[empty_id])
    with pytest.raises(MedAIError, match="stl or obj"):
        export_segmentation_meshes(node, tmp_path / "x", fmt="ply")
    assert list(tmp_path.iterdir()) == []
