"""The console API against real MRML: ``MedAIClassifyLogic().classify(volumeNode)`` -> a table node (class,
probability, best first) and a saliency node on the input node's geometry, checked in millimetres on an oblique
node, a flipped node and a node under a parent transform.
"""

from __future__ import annotations

import numpy as np
import pytest
import vtk

from conftest import crop, geometry_variants
from medai.slicer import MedAIClassifyLogic, init_headless, node_from_volume, volume_from_node

CLASSES = {"CT_body", "CT_head", "MR_body", "MR_head"}


@pytest.fixture(scope="module")
def logic():
    init_headless()
    return MedAIClassifyLogic()


@pytest.fixture(scope="module")
def t1_crop(itk_t1):
    return crop(itk_t1, (6, 40, 16), (48, 40, 96))


def table_rows(table) -> list[tuple[str, float]]:
    return [(table.GetCellText(r, 0), float(table.GetCellText(r, 1))) for r in range(table.GetNumberOfRows())]


def ijk_to_ras(node) -> np.ndarray:
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])


def test_table_holds_every_class_best_first(logic, t1_crop):
    node = node_from_volume(t1_crop, "t1")
    table, saliency = logic.classify(node, model="image-type")
    assert saliency is None
    assert table.IsA("vtkMRMLTableNode") and table.GetScene() is node.GetScene()
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == ["class", "probability"]
    rows = table_rows(table)
    assert {name for name, _ in rows} == CLASSES
    assert sum(p for _, p in rows) == pytest.approx(1.0, abs=1e-5)
    assert [p for _, p in rows] == sorted((p for _, p in rows), reverse=True)
    assert rows[0][0].startswith("MR") and rows[0][0] == logic.last_result.label


@pytest.mark.parametrize("variant", ["oblique", "flipped"])
def test_saliency_node_is_on_the_input_nodes_geometry(logic, t1_crop, variant):
    volume = geometry_variants(t1_crop)[variant]
    node = node_from_volume(volume, variant)
    table, saliency = logic.classify(node, model="image-type", saliency=True)
    assert saliency.IsA("vtkMRMLScalarVolumeNode")
    assert saliency.GetImageData().GetDimensions() == node.GetImageData().GetDimensions()
    np.testing.assert_allclose(ijk_to_ras(saliency), ijk_to_ras(node), atol=1e-9)
    # in millimetres: every voxel centre of the map sits on the image's voxel centre (world LPS)
    image, heat = volume_from_node(node), volume_from_node(saliency)
    corners = np.array([[0, 0, 0], [95, 39, 47], [95, 0, 0], [0, 39, 47]], float)
    np.testing.assert_allclose(heat.lps_points(corners), image.lps_points(corners), atol=1e-6)
    np.testing.assert_allclose(image.lps_points(corners), volume.lps_points(corners), atol=1e-6)
    assert 0 <= heat.array.min() and heat.array.max() == pytest.approx(1.0) and heat.array.std() > 0.05
    display = saliency.GetDisplayNode()
    assert display.GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat" and display.GetApplyThreshold()


def test_a_node_under_a_parent_transform_keeps_its_map_under_it(logic, t1_crop):
    node = node_from_volume(geometry_variants(t1_crop)["oblique"], "moved")
    scene = node.GetScene()
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 25.0)
    matrix.SetElement(2, 3, -12.5)
    transform.SetMatrixTransformToParent(matrix)
    node.SetAndObserveTransformNodeID(transform.GetID())
    _, saliency = logic.classify(node, model="image-type", saliency=True)
    assert saliency.GetTransformNodeID() == transform.GetID()
    np.testing.assert_allclose(ijk_to_ras(saliency), ijk_to_ras(node), atol=1e-9)
    assert volume_from_node(saliency).same_grid(volume_from_node(node), tol=1e-9)  # both in world coordinates


def test_models_lists_classification_cards(logic):
    assert "image-type" in [card.id for card in logic.models()]
    assert all(card.task == "classification" for card in logic.models())
