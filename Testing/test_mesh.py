"""Surface meshes of label maps: a box of known size and the Colin27 brain mask (a real label), on original,
oblique, flipped (det < 0) and anisotropic grids. Checked in millimetres: extent, centroid and enclosed volume
against the voxels; triangles and normals facing outward on every grid; the same vertices as Slicer's own closed
surface (slicer-core); STL and OBJ files read back by VTK's readers, their SPACE= header, RAS = LPS with x and y
negated, per-segment and merged files, safe names, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import slicer
import vtk
from scipy.spatial import cKDTree
from vtkmodules.util.numpy_support import vtk_to_numpy

from conftest import COLIN27_BET, crop, geometry_variants
from medai import MedAIError, Volume
from medai.export import label_surfaces, write_meshes
from medai.export.mesh import signed_volume
from medai.io import read_volume
from medai.labels import SegmentLabel
from medai.slicer import node_from_volume, segmentation_node_from_labels

VARIANTS = ["original", "oblique", "flipped", "anisotropic"]
BOX = SegmentLabel(1, "Box", (0.2, 0.6, 0.9))
BRAIN = SegmentLabel(1, "Brain", (0.9, 0.6, 0.5))
#: The box: voxels [3, 15) x [4, 14) x [2, 10) along I, J, K of a 20 x 18 x 12 grid.
BOX_LOW, BOX_HIGH = np.array([3, 4, 2]), np.array([14, 13, 9])


@pytest.fixture(scope="module")
def box_map() -> Volume:
    array = np.zeros((12, 18, 20), np.uint8)
    array[2:10, 4:14, 3:15] = 1
    return Volume(array, [0.8, 1.1, 2.5], [-30.0, 12.5, 40.0], np.eye(3))


@pytest.fixture(scope="module")
def brain_map() -> Volume:
    """A 60 x 56 x 48 crop of the Colin27 brain mask crossing the brain's edge (cut faces close at the border)."""
    mask = read_volume(COLIN27_BET)
    block = crop(mask, (20, 100, 60), (48, 56, 60))
    return block.with_array((block.array > 0).astype(np.uint8))


def points_of(polydata) -> np.ndarray:
    return vtk_to_numpy(polydata.GetPoints().GetData()).astype(float)


def enclosed_volume(polydata) -> float:
    mass = vtk.vtkMassProperties()
    mass.SetInputData(polydata)
    mass.Update()
    return mass.GetVolume()


def volume_centroid(polydata) -> np.ndarray:
    """Centroid of the enclosed solid (signed tetrahedra from the origin), in mm."""
    points = points_of(polydata)
    triangles = vtk_to_numpy(polydata.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    a, b, c = (points[triangles[:, n]] for n in range(3))
    volumes = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6
    return (volumes[:, None] * (a + b + c) / 4).sum(axis=0) / volumes.sum()


def voxel_centroid(label_map: Volume) -> np.ndarray:
    k, j, i = np.nonzero(label_map.array)
    return label_map.lps_points(np.stack([i, j, k], axis=1)).mean(axis=0)


def normals_face_outward(polydata) -> float:
    """Fraction of triangles whose geometric normal agrees with the stored point normals of their corners."""
    points = points_of(polydata)
    normals = vtk_to_numpy(polydata.GetPointData().GetNormals()).astype(float)
    triangles = vtk_to_numpy(polydata.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    a, b, c = (points[triangles[:, n]] for n in range(3))
    facet = np.cross(b - a, c - a)
    return float(np.mean(np.einsum("ij,ij->i", facet, normals[triangles].sum(axis=1)) > 0))


@pytest.mark.parametrize("variant", VARIANTS)
def test_box_extent_centroid_volume_and_orientation(box_map, variant):
    label_map = geometry_variants(box_map)[variant]
    surface = label_surfaces(label_map, [BOX], smoothing=0.0)["Box"]
    # in index space the faces of an unsmoothed surface lie exactly half a voxel outside the box's voxel centres
    ijk = label_map.ijk_indices(points_of(surface))
    np.testing.assert_allclose(ijk.min(axis=0), BOX_LOW - 0.5, atol=1e-4)
    np.testing.assert_allclose(ijk.max(axis=0), BOX_HIGH + 0.5, atol=1e-4)
    # in millimetres: the bounds within a voxel of the box's physical corners, the centroid on the voxels' centroid
    corners = label_map.lps_points([[x, y, z] for x in (BOX_LOW[0] - 0.5, BOX_HIGH[0] + 0.5)
                                    for y in (BOX_LOW[1] - 0.5, BOX_HIGH[1] + 0.5) for z in (BOX_LOW[2] - 0.5, BOX_HIGH[2] + 0.5)])
    bounds = np.array(surface.GetBounds()).reshape(3, 2)
    np.testing.assert_allclose(bounds[:, 0], corners.min(axis=0), atol=label_map.spacing.max())
    np.testing.assert_allclose(bounds[:, 1], corners.max(axis=0), atol=label_map.spacing.max())
    np.testing.assert_allclose(volume_centroid(surface), voxel_centroid(label_map), atol=1e-6)
    # volume: 12 x 10 x 8 voxels; marching cubes bevels the 12 edges (1.6% here)
    expected = 12 * 10 * 8 * np.prod(label_map.spacing)
    assert enclosed_volume(surface) == pytest.approx(expected, rel=0.02)
    assert signed_volume(surface) == pytest.approx(enclosed_volume(surface), rel=1e-6), "triangles face outward"
    assert normals_face_outward(surface) == 1.0
    centre = voxel_centroid(label_map)
    normals = vtk_to_numpy(surface.GetPointData().GetNormals())
    assert np.mean(np.einsum("ij,ij->i", normals, points_of(surface) - centre) > 0) == 1.0, "a convex box: all normals point away"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("smoothing", [0.0, 0.5])
def test_brain_surface_matches_the_voxels(brain_map, variant, smoothing):
    label_map = geometry_variants(brain_map)[variant]
    surface = label_surfaces(label_map, [BRAIN], smoothing=smoothing)["Brain"]
    voxel_volume = np.prod(label_map.spacing)
    count = int(label_map.array.sum())
    assert count > 50_000
    assert enclosed_volume(surface) == pytest.approx(count * voxel_volume, rel=0.02 if smoothing == 0 else 0.03)
    # inside out would give a negative volume and ~0 agreement; smoothing folds a few slivers (~0.5% of triangles)
    assert signed_volume(surface) > 0 and normals_face_outward(surface) > (0.999 if smoothing == 0 else 0.98)
    centroid_ijk = label_map.ijk_indices(volume_centroid(surface))[0]
    k, j, i = np.nonzero(label_map.array)
    np.testing.assert_allclose(centroid_ijk, [i.mean(), j.mean(), k.mean()], atol=0.3)
    ijk = label_map.ijk_indices(points_of(surface))
    np.testing.assert_allclose(ijk.min(axis=0), [i.min() - 0.5, j.min() - 0.5, k.min() - 0.5], atol=1.0)
    np.testing.assert_allclose(ijk.max(axis=0), [i.max() + 0.5, j.max() + 0.5, k.max() + 0.5], atol=1.0)


def slicer_closed_surface(label_map: Volume, label: SegmentLabel, smoothing: float, decimation: float):
    """Slicer's own closed surface of ``label`` (slicer-core), in RAS."""
    reference = node_from_volume(label_map.with_array(label_map.array.astype(np.int16)), "reference")
    node = segmentation_node_from_labels(label_map, [label], reference)
    node.GetSegmentation().SetConversionParameter("Smoothing factor", str(smoothing))
    node.GetSegmentation().SetConversionParameter("Decimation factor", str(decimation))
    assert node.CreateClosedSurfaceRepresentation()
    polydata = vtk.vtkPolyData()
    segment_id = node.GetSegmentation().GetNthSegmentID(0)
    assert slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentClosedSurfaceRepresentation(node, segment_id, polydata)
    return polydata


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("smoothing, decimation", [(0.5, 0.0), (0.0, 0.0), (0.3, 0.6)])
def test_same_surface_as_slicer(brain_map, variant, smoothing, decimation):
    label_map = geometry_variants(brain_map)[variant]
    ours = label_surfaces(label_map, [BRAIN], smoothing=smoothing, decimation=decimation)["Brain"]
    theirs_ras = slicer_closed_surface(label_map, BRAIN, smoothing, decimation)
    theirs = points_of(theirs_ras) * [-1, -1, 1]
    np.testing.assert_allclose(np.array(ours.GetBounds()).reshape(3, 2).T,
                               np.array([theirs.min(axis=0), theirs.max(axis=0)]), atol=label_map.spacing.min())
    # the very same vertices (same pipeline, same parameters), to float precision
    assert ours.GetNumberOfPoints() == theirs_ras.GetNumberOfPoints()
    assert ours.GetNumberOfPolys() == theirs_ras.GetNumberOfPolys()
    assert cKDTree(theirs).query(points_of(ours))[0].max() < 1e-4
    assert cKDTree(points_of(ours)).query(theirs)[0].max() < 1e-4
    # Slicer keeps a reflected grid's triangles inside out; ours face outward on every grid
    det = np.linalg.det(label_map.ijk_to_ras_matrix()[:3, :3])
    assert signed_volume(ours) > 0
    assert np.sign(signed_volume(theirs_ras)) == np.sign(det)


def read_stl(path):
    reader = vtk.vtkSTLReader()
    reader.SetFileName(str(path))
    reader.MergingOff()  # keep every triangle (float32 rounding would merge a few near-coincident points)
    reader.Update()
    return reader


def test_stl_files_read_back_with_their_coordinate_system(brain_map, box_map, tmp_path):
    label_map = geometry_variants(brain_map)["flipped"]
    labels = [BRAIN]
    surface = label_surfaces(label_map, labels)["Brain"]
    lps_file, = write_meshes(label_map, labels, tmp_path / "lps")
    ras_file, = write_meshes(label_map, labels, tmp_path / "ras", coordinates="RAS")
    assert lps_file.name == ras_file.name == "Brain.stl"
    assert lps_file.read_bytes()[:80].rstrip(b"\0 ").decode() == "MedAI output. SPACE=LPS"
    lps, ras = read_stl(lps_file), read_stl(ras_file)
    assert lps.GetHeader() == "MedAI output. SPACE=LPS" and ras.GetHeader() == "MedAI output. SPACE=RAS"
    lps_points, ras_points = points_of(lps.GetOutput()), points_of(ras.GetOutput())
    np.testing.assert_array_equal(ras_points, lps_points * [-1, -1, 1])
    assert lps.GetOutput().GetNumberOfPolys() == surface.GetNumberOfPolys()
    np.testing.assert_allclose(lps_points, points_of(surface)[vtk_to_numpy(surface.GetPolys().GetConnectivityArray())], atol=1e-4)
    assert signed_volume(lps.GetOutput()) > 0 and signed_volume(ras.GetOutput()) > 0, "facets face outward in the file"
    assert not list(tmp_path.rglob(".*")), "no staging leftovers"


def test_obj_files_carry_colours_and_read_back(box_map, tmp_path):
    label_map = box_map.with_array(box_map.array.copy())
    label_map.array[1:3, 1:3, 16:19] = 2
    labels = [BOX, SegmentLabel(2, "Small/odd name?", (1.0, 0.5, 0.0))]
    files = write_meshes(label_map, labels, tmp_path / "obj", fmt="obj", coordinates="RAS")
    assert [f.name for f in files] == ["Box.obj", "Small_odd_name.obj"]
    assert sorted(p.name for p in (tmp_path / "obj").iterdir()) == ["Box.mtl", "Box.obj", "Small_odd_name.mtl", "Small_odd_name.obj"]
    surfaces = label_surfaces(label_map, labels)
    for path, label in zip(files, labels):
        reader = vtk.vtkOBJReader()
        reader.SetFileName(str(path))
        reader.Update()
        assert "SPACE=RAS" in reader.GetComment()
        np.testing.assert_allclose(points_of(reader.GetOutput()), points_of(surfaces[label.name]) * [-1, -1, 1], atol=1e-5)
        assert reader.GetOutput().GetNumberOfPolys() == surfaces[label.name].GetNumberOfPolys()
        assert signed_volume(reader.GetOutput()) > 0
        mtl = path.with_suffix(".mtl").read_text()
        assert "Kd " + " ".join(f"{c:.6f}" for c in label.color) in mtl
        assert f"mtllib {path.with_suffix('.mtl').name}" in path.read_text()
    merged, = write_meshes(label_map, labels, tmp_path / "all.obj", fmt="obj", merged=True)
    text = merged.read_text()
    assert merged.name == "all.obj" and text.count("\no ") == 2 and text.count("usemtl ") == 2
    assert (tmp_path / "all.mtl").read_text().count("newmtl ") == 2


def test_per_segment_and_merged_file_counts(box_map, tmp_path):
    label_map = box_map.with_array(box_map.array.copy())
    label_map.array[1:3, 1:3, 16:19] = 2
    labels = [BOX, SegmentLabel(2, "box", (1, 1, 0)), SegmentLabel(3, "Absent", (0, 1, 0))]
    per_segment = write_meshes(label_map, labels, tmp_path / "each")
    assert [p.name for p in per_segment] == ["Box.stl", "box_2.stl"], "absent labels get no file; names stay distinct ignoring case"
    merged = write_meshes(label_map, labels, tmp_path / "each", merged=True)
    assert [p.name for p in merged] == ["segments.stl"]
    assert len(list((tmp_path / "each").iterdir())) == 3
    one = read_stl(merged[0]).GetOutput()
    parts = [read_stl(p).GetOutput().GetNumberOfPolys() for p in per_segment]
    assert one.GetNumberOfPolys() == sum(parts)
    # writing again replaces the files in place
    assert write_meshes(label_map, labels, tmp_path / "each") == per_segment
    assert len(list((tmp_path / "each").iterdir())) == 3


def test_refusals(box_map, tmp_path):
    with pytest.raises(MedAIError, match="STL or OBJ|stl or obj"):
        write_meshes(box_map, [BOX], tmp_path / "x", fmt="ply")
    with pytest.raises(MedAIError, match="LPS or RAS"):
        write_meshes(box_map, [BOX], tmp_path / "x", coordinates="XYZ")
    with pytest.raises(MedAIError, match="goes into a folder"):
        write_meshes(box_map, [BOX], tmp_path / "x.stl")
    with pytest.raises(MedAIError, match="format asked for is stl"):
        write_meshes(box_map, [BOX], tmp_path / "x.obj", merged=True)
    with pytest.raises(MedAIError, match="does not exist"):
        write_meshes(box_map, [BOX], tmp_path / "missing" / "meshes")
    with pytest.raises(MedAIError, match="no surface|has voxels"):
        write_meshes(box_map, [SegmentLabel(7, "Nothing")], tmp_path / "x")
    with pytest.raises(MedAIError, match="smoothing factor"):
        label_surfaces(box_map, [BOX], smoothing=2)
    with pytest.raises(MedAIError, match="decimation factor"):
        label_surfaces(box_map, [BOX], decimation=1.0)
    with pytest.raises(MedAIError, match="names must be distinct"):
        label_surfaces(box_map, [BOX, SegmentLabel(2, "Box")])
    with pytest.raises(MedAIError, match="integers"):
        label_surfaces(box_map.with_array(box_map.array.astype(float)), [BOX])
    assert list(tmp_path.iterdir()) == []
