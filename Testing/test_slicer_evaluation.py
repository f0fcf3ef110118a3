"""evaluate_segmentation_nodes on real MRML: a real brain mask (Colin27's ch2bet) and the AAL cerebellum as
overlapping reference segments against eroded/shifted predictions; the table equals the engine's own metrics on
the same masks, also when the nodes sit on an oblique grid and when the reference is stored flipped (the same
voxels in physical space, K reversed), and a segment found in one node only is reported."""

from __future__ import annotations

import math

import numpy as np
import pytest
import slicer
from scipy import ndimage

from conftest import COLIN27, crop, rotation
from medai import MedAIError, Volume
from medai.evaluation import METRICS, label_metrics
from medai.io import read_volume
from medai.slicer import evaluate_segmentation_nodes, node_from_volume
from medai.slicer.evaluation import METRIC_COLUMNS, table_rows

START, SIZE = (20, 30, 60), (32, 48, 48)  # K,J,I: the inferior brain edge with most of the cerebellum


@pytest.fixture(scope="module")
def masks(colin27, colin27_brain_mask):
    """(T1 crop, {name: reference mask}, {name: prediction mask}), K,J,I on the crop's grid."""
    aal = crop(read_volume(COLIN27.parent / "aal.nii.gz"), START, SIZE).array
    brain = crop(colin27_brain_mask, START, SIZE).array > 0
    cerebellum = (aal >= 91) & (aal <= 116)
    vermis = (aal >= 109) & (aal <= 116)
    reference = {"Brain": brain, "Cerebellum": cerebellum, "Vermis": vermis}
    tumour = np.zeros(brain.shape, bool)
    tumour[10:16, 20:27, 8:14] = True
    prediction = {"Brain": np.roll(ndimage.binary_erosion(brain, iterations=2), 2, axis=1),
                  "Cerebellum": np.roll(ndimage.binary_dilation(cerebellum), (1, -2), axis=(0, 2)),
                  "Tumour": tumour}
    assert brain.sum() > 30000 and cerebellum.sum() > 30000 and vermis.sum() > 1000
    return crop(colin27, START, SIZE), reference, prediction


def stored_flipped(volume: Volume) -> Volume:
    """The same voxels at the same physical positions, stored with K reversed (det(direction) < 0)."""
    k = volume.array.shape[0]
    origin = volume.lps_points([[0, 0, k - 1]])[0]
    return Volume(volume.array[::-1].copy(), volume.spacing, origin, volume.direction @ np.diag([1.0, 1.0, -1.0]))


def segmentation_node(volume_node, masks: dict[str, np.ndarray], name: str):
    """A segmentation node on ``volume_node`` with one (possibly overlapping) segment per mask, made with Slicer's
    own API."""
    node = volume_node.GetScene().AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    node.CreateDefaultDisplayNodes()
    for segment_name, mask in masks.items():
        segment_id = node.GetSegmentation().AddEmptySegment("", segment_name)
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask.astype(np.uint8), node, segment_id, volume_node)
    return node


def _assert_rows_equal_engine(rows: list[dict], reference: dict, prediction: dict, spacing_kji) -> None:
    """Each row equals medai.evaluation.label_metrics on the masks of the original grid."""
    empty = np.zeros(next(iter(reference.values())).shape, bool)
    names = list(reference) + [n for n in prediction if n not in reference]
    assert [row["Segment"] for row in rows] == names
    for row in rows:
        expected = label_metrics(prediction.get(row["Segment"], empty), reference.get(row["Segment"], empty),
                                 spacing_kji)
        for metric in METRICS:
            got, want = row[METRIC_COLUMNS[metric]], expected[metric]
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-12, abs=1e-12), \
                (row["Segment"], metric, got, want)


@pytest.mark.parametrize("oblique", [False, True], ids=["axis-aligned", "oblique"])
@pytest.mark.parametrize("reference_storage", ["same", "flipped"])
def test_table_equals_engine_metrics_in_physical_space(masks, oblique, reference_storage):
    """The prediction is drawn on the T1 crop (or an oblique copy of it); the reference is drawn on that volume or on
    a copy storing the same voxels K-reversed. Slicer's export compares segments where they are in space: every
    number equals the engine's on the original arrays -- Dice/HD95/MSD/volumes, including the overlapping
    Cerebellum inside Brain, and Vermis (reference only) and Tumour (prediction only) as rows of their own."""
    image, reference, prediction = masks
    if oblique:
        image = Volume(image.array, image.spacing, image.origin + [3.25, -7.5, 11.125],
                       rotation([1, 2, 3], 23.0) @ image.direction)
    grid = stored_flipped(image) if reference_storage == "flipped" else image
    store = (lambda m: m[::-1]) if reference_storage == "flipped" else (lambda m: m)
    pred_volume = node_from_volume(image, "T1 prediction grid")
    ref_volume = node_from_volume(grid, "T1 reference grid")
    pred_node = segmentation_node(pred_volume, prediction, "prediction")
    ref_node = segmentation_node(ref_volume, {n: store(m) for n, m in reference.items()}, "reference")

    table = evaluate_segmentation_nodes(pred_node, ref_node)
    assert table.IsA("vtkMRMLTableNode") and table.GetScene() is ref_node.GetScene()
    assert table.GetName().startswith("prediction vs reference")
    rows = table_rows(table)
    _assert_rows_equal_engine(rows, reference, prediction, image.spacing[::-1])
    by_name = {row["Segment"]: row for row in rows}
    assert 0.8 < by_name["Brain"]["Dice"] < 1 and by_name["Brain"]["HD95 (mm)"] > 1
    assert by_name["Vermis"]["Note"] == "not in the prediction" and by_name["Vermis"]["Prediction segment"] == ""
    assert by_name["Vermis"]["Dice"] == 0 and math.isnan(by_name["Vermis"]["HD95 (mm)"])
    assert by_name["Vermis"]["Reference volume (mL)"] == pytest.approx(reference["Vermis"].sum() / 1000)
    assert by_name["Tumour"]["Note"] == "not in the reference" and by_name["Tumour"]["Reference volume (mL)"] == 0
    assert math.isnan(by_name["Tumour"]["Volume difference (%)"])
    assert table.GetColumnUnitLabel("HD95 (mm)") == "mm"

    # given explicitly, the reference volume node gives the same table; so does the reference's own geometry
    # string when the segmentation has no volume node to refer to
    again = table_rows(evaluate_segmentation_nodes(pred_node, ref_node, referenceVolumeNode=ref_volume))
    ref_node.RemoveNodeReferenceIDs(ref_node.GetReferenceImageGeometryReferenceRole())
    assert ref_node.GetNodeReference(ref_node.GetReferenceImageGeometryReferenceRole()) is None
    from_geometry = table_rows(evaluate_segmentation_nodes(pred_node, ref_node))
    assert ref_node.GetScene().GetFirstNodeByName("MedAI evaluation grid") is None  # the temporary grid is gone
    for other in (again, from_geometry):
        assert [r["Segment"] for r in other] == [r["Segment"] for r in rows]
        for a, b in zip(other, rows):
            assert all(a[c] == b[c] or (math.isnan(a[c]) and math.isnan(b[c])) for c in METRIC_COLUMNS.values())


def test_explicit_pairs_and_bad_pairs(masks):
    image, reference, prediction = masks
    volume = node_from_volume(image, "T1")
    pred_node = segmentation_node(volume, {"brain (model)": prediction["Brain"]}, "model output")
    ref_node = segmentation_node(volume, {"Brain": reference["Brain"], "Cerebellum": reference["Cerebellum"]}, "expert")
    rows = table_rows(evaluate_segmentation_nodes(pred_node, ref_node, segment_pairs=[("brain (model)", "Brain")]))
    assert len(rows) == 1
    assert (rows[0]["Prediction segment"], rows[0]["Reference segment"]) == ("brain (model)", "Brain")
    expected = label_metrics(prediction["Brain"], reference["Brain"], image.spacing[::-1])
    assert rows[0]["Dice"] == pytest.approx(expected["dice"], rel=1e-12) and rows[0]["Note"] == ""
    by_name = table_rows(evaluate_segmentation_nodes(pred_node, ref_node))  # names differ: nothing is paired
    assert [(r["Segment"], r["Note"]) for r in by_name] == [("Brain", "not in the prediction"),
                                                           ("Cerebellum", "not in the prediction"),
                                                           ("brain (model)", "not in the reference")]
    with pytest.raises(MedAIError, match="'expert' has no segment named .*'Ventricles'"):
        evaluate_segmentation_nodes(pred_node, ref_node, segment_pairs=[("brain (model)", "Ventricles")])


def test_prediction_on_another_grid_equals_medai_evaluate(tmp_path, masks):
    """The prediction lives on a coarser 2 mm grid turned 17 degrees, the reference on an oblique grid stored
    flipped: the table equals what ``medai evaluate``'s engine (evaluate_case, nearest-neighbour resampling onto
    the reference grid) gives for the same two label maps written as files."""
    from medai.evaluation.evaluate import evaluate_case
    from medai.io import write_volume
    from medai.resample import resample_to_grid

    image, reference, _ = masks
    oblique = Volume(image.array, image.spacing, image.origin, rotation([1, 2, 3], 23.0) @ image.direction)
    ref_map = stored_flipped(oblique.with_array(reference["Brain"].astype(np.uint8)))
    coarse = Volume(np.zeros((18, 26, 26), np.int16), [2.0, 2.0, 2.0], oblique.origin + [-1.3, 0.7, 0.3],
                    rotation([0, 1, 1], 17.0) @ oblique.direction)
    pred_map = resample_to_grid(oblique.with_array(ndimage.binary_erosion(reference["Brain"]).astype(np.uint8)),
                                coarse, "nearest")
    assert 20000 < pred_map.array.sum() * 8 < reference["Brain"].sum()
    write_volume(pred_map, tmp_path / "pred.nrrd")
    write_volume(ref_map, tmp_path / "ref.nrrd")
    (engine,) = evaluate_case("case", tmp_path / "pred.nrrd", tmp_path / "ref.nrrd")
    assert engine["resampled"]

    pred_volume = node_from_volume(pred_map.with_array(pred_map.array.astype(np.int16)), "coarse T1 grid")
    ref_volume = node_from_volume(stored_flipped(oblique), "oblique flipped T1")
    pred_node = segmentation_node(pred_volume, {"Brain": pred_map.array > 0}, "coarse prediction")
    ref_node = segmentation_node(ref_volume, {"Brain": ref_map.array > 0}, "oblique reference")
    (row,) = table_rows(evaluate_segmentation_nodes(pred_node, ref_node, ref_volume))
    for metric in METRICS:
        assert row[METRIC_COLUMNS[metric]] == pytest.approx(engine[metric], rel=1e-12, abs=1e-12), metric
    assert 0.5 < row["Dice"] < 0.95
