"""Volume <-> scalar volume node on real MRML (slicer-core): exact voxels and geometry, Slicer's own file I/O,
and parent transforms hardened into the geometry."""

import numpy as np
import pytest
import slicer
import vtk

from conftest import assert_same_physical, geometry_variants
from medai import MedAIError, Volume
from medai.io import read_volume
from medai.slicer import init_headless, load_volume_node, node_from_volume, save_volume_node, volume_from_node

SOURCES = ["colin27_crop", "itk_t1"]
VARIANTS = ["original", "oblique", "flipped", "anisotropic"]


@pytest.fixture(params=[(s, v) for s in SOURCES for v in VARIANTS], ids=lambda p: f"{p[0]}-{p[1]}")
def variant(request) -> Volume:
    source, name = request.param
    return geometry_variants(request.getfixturevalue(source))[name]


def ras_of_voxels(node, ijk: np.ndarray) -> np.ndarray:
    """RAS positions of voxel indices as Slicer computes them from the node's IJKToRAS."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([matrix.MultiplyPoint([*p, 1.0])[:3] for p in ijk])


def test_volume_node_round_trip_is_exact(variant):
    node = node_from_volume(variant, "round-trip")
    back = volume_from_node(node)
    assert back.array.dtype == variant.array.dtype
    np.testing.assert_array_equal(back.array, variant.array)
    np.testing.assert_allclose(back.spacing, variant.spacing, atol=1e-9, rtol=0)
    np.testing.assert_allclose(back.origin, variant.origin, atol=1e-9, rtol=0)
    np.testing.assert_allclose(back.direction, variant.direction, atol=1e-9, rtol=0)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), variant.array)


def test_node_places_voxels_at_lps_with_x_and_y_negated(variant):
    node = node_from_volume(variant, "positions")
    ijk = np.array([[0, 0, 0], [3, 5, 7], [variant.size_ijk[0] - 1, 1, variant.size_ijk[2] - 1]])
    np.testing.assert_allclose(ras_of_voxels(node, ijk), variant.lps_points(ijk) * [-1, -1, 1], atol=1e-9, rtol=0)
    np.testing.assert_allclose(node.GetSpacing(), variant.spacing, atol=1e-12)
    np.testing.assert_allclose(node.GetOrigin(), variant.origin * [-1, -1, 1], atol=1e-12)


def test_display_node_is_grey_with_a_window_inside_the_data(variant):
    display = node_from_volume(variant, "display").GetDisplayNode()
    assert display.GetColorNodeID() == "vtkMRMLColorTableNodeGrey"
    assert not display.GetAutoWindowLevel()
    low, high = display.GetWindowLevelMin(), display.GetWindowLevelMax()
    assert variant.array.min() <= low < high <= variant.array.max()


def test_slicer_writes_what_the_engine_reads(variant, tmp_path):
    """Slicer's archetype storage node writes the node; the engine's reader finds the same voxels in space."""
    node = node_from_volume(variant, "to-file")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(tmp_path / "slicer.nrrd"))
    assert storage.WriteData(node)
    assert_same_physical(variant, read_volume(tmp_path / "slicer.nrrd"), tol_mm=1e-6)
    loaded = volume_from_node(load_volume_node(tmp_path / "slicer.nrrd"))
    assert_same_physical(variant, loaded, tol_mm=1e-6)


def test_slicer_reads_what_the_bridge_saves(variant, tmp_path):
    """save_volume_node writes with the engine; Slicer's volumes logic reads it (flipping K when det < 0)."""
    path = save_volume_node(node_from_volume(variant, "saved"), tmp_path / "engine.nrrd")
    node = slicer.modules.volumes.logic().AddArchetypeVolume(str(path), "read-by-slicer")
    assert node is not None
    assert_same_physical(variant, volume_from_node(node), tol_mm=1e-6)


def test_load_volume_node_names_the_node_after_the_file(colin27_crop, tmp_path):
    path = save_volume_node(node_from_volume(colin27_crop), tmp_path / "head.scan.nii.gz")
    node = load_volume_node(path)
    assert node.GetName() == "head.scan"
    assert node.GetScene() is init_headless()
    assert_same_physical(colin27_crop, volume_from_node(node), tol_mm=1e-4)  # NIfTI stores float32 geometry


def add_transform(node, matrix_ras: np.ndarray):
    transform = node.GetScene().AddNewNodeByClass("vtkMRMLLinearTransformNode")
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(matrix_ras))
    node.SetAndObserveTransformNodeID(transform.GetID())
    return transform


def test_linear_parent_transform_is_hardened(colin27_crop):
    """A translated-and-rotated volume is read where Slicer shows it, in millimetres."""
    for name, v in geometry_variants(colin27_crop).items():
        node = node_from_volume(v, f"moved-{name}")
        # RAS to world: 90 degrees about S ((x, y, z) -> (-y, x, z)), then a shift of (+10, -20, +5) mm
        to_world = np.array([[0.0, -1, 0, 10], [1, 0, 0, -20], [0, 0, 1, 5], [0, 0, 0, 1]])
        add_transform(node, to_world)
        moved = volume_from_node(node)
        np.testing.assert_array_equal(moved.array, v.array)
        x, y, z = v.lps_points([[4, 6, 9]])[0] * [-1, -1, 1]  # voxel (4, 6, 9) in RAS before the transform
        expected_ras = [-y + 10, x - 20, z + 5]
        np.testing.assert_allclose(moved.lps_points([[4, 6, 9]])[0], np.multiply(expected_ras, [-1, -1, 1]), atol=1e-9, err_msg=name)
        # Slicer's own transform of the node's local RAS agrees
        world = vtk.vtkGeneralTransform()
        node.GetParentTransformNode().GetTransformToWorld(world)
        local = ras_of_voxels(node, [[4, 6, 9]])[0]
        np.testing.assert_allclose(world.TransformPoint(*local), expected_ras, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(moved.spacing, v.spacing, atol=1e-12)


def test_scaling_and_mirroring_transform_goes_into_spacing_and_direction(colin27_crop):
    node = node_from_volume(colin27_crop, "scaled")
    add_transform(node, np.diag([-2.0, 1.0, 0.5, 1.0]))
    moved = volume_from_node(node)
    np.testing.assert_allclose(moved.spacing, colin27_crop.spacing * [2.0, 1.0, 0.5], atol=1e-12)  # colin27: axis-aligned
    assert np.linalg.det(moved.direction) == pytest.approx(-np.linalg.det(colin27_crop.direction))
    ijk = [[5, 7, 11]]
    np.testing.assert_allclose(moved.lps_points(ijk)[0], colin27_crop.lps_points(ijk)[0] * [-2.0, 1.0, 0.5], atol=1e-9)


def test_shearing_or_non_linear_transforms_are_refused(colin27_crop):
    node = node_from_volume(colin27_crop, "sheared")
    shear = np.eye(4)
    shear[0, 1] = 0.3
    add_transform(node, shear)
    with pytest.raises(MedAIError, match="sheared"):
        volume_from_node(node)

    bent = node_from_volume(colin27_crop, "bent")
    spline = vtk.vtkThinPlateSplineTransform()
    source, target = vtk.vtkPoints(), vtk.vtkPoints()
    for p in [(0, 0, 0), (50, 0, 0), (0, 50, 0), (0, 0, 50), (30, 30, 30)]:
        source.InsertNextPoint(p)
        target.InsertNextPoint(p[0] + 2, p[1], p[2] + (5 if p == (30, 30, 30) else 0))
    spline.SetSourceLandmarks(source)
    spline.SetTargetLandmarks(target)
    transform = bent.GetScene().AddNewNodeByClass("vtkMRMLTransformNode", "warp")
    transform.SetAndObserveTransformToParent(spline)
    bent.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(MedAIError, match="non-linear transform 'warp'"):
        volume_from_node(bent)


def test_types_vtk_cannot_hold_are_converted_losslessly(colin27_crop):
    labels = (colin27_crop.array > 80).astype(np.int64) * 300
    node = node_from_volume(colin27_crop.with_array(labels), "int64")
    back = volume_from_node(node)
    assert back.array.dtype == np.uint16
    np.testing.assert_array_equal(back.array, labels)
    mask = volume_from_node(node_from_volume(colin27_crop.with_array(colin27_crop.array > 80), "bool"))
    assert mask.array.dtype == np.uint8
    np.testing.assert_array_equal(mask.array, colin27_crop.array > 80)
