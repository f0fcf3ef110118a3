"""Per-segment statistics: volume in millilitres and the image's intensities under each segment.

Checked against what a user would compare with: voxel counts times the voxel volume on anisotropic grids, and
VTK's vtkImageAccumulate over a stencil (the engine of Slicer's Segment Statistics module) for the intensities.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import numpy as np
import pytest

from conftest import ITK_T1
from medai import Volume
from medai.evaluation.statistics import structure_statistics, write_statistics_csv
from medai.labels import SegmentLabel
from medai.io import write_volume

BRAIN = SegmentLabel(1, "Brain")


def vtk_accumulate(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Count, mean, sample std, min and max of ``image`` under ``mask`` by vtkImageAccumulate with a stencil."""
    import vtk
    from vtk.util import numpy_support

    def vtk_image(array):
        out = vtk.vtkImageData()
        out.SetDimensions(*array.shape[::-1])
        out.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True))
        return out

    stencil = vtk.vtkImageToImageStencil()
    stencil.SetInputData(vtk_image(mask.astype(np.uint8)))
    stencil.ThresholdByUpper(1)
    stencil.Update()
    accumulate = vtk.vtkImageAccumulate()
    accumulate.SetInputData(vtk_image(image.astype(np.float64)))
    accumulate.SetStencilData(stencil.GetOutput())
    accumulate.IgnoreZeroOff()
    accumulate.Update()
    return {"voxels": accumulate.GetVoxelCount(), "mean": accumulate.GetMean()[0],
            "std": accumulate.GetStandardDeviation()[0], "min": accumulate.GetMin()[0], "max": accumulate.GetMax()[0]}


@pytest.mark.parametrize("name", ["colin27", "itk_t1"])
def test_statistics_match_slicer_s_segment_statistics_engine(name, request):
    image = request.getfixturevalue(name)
    mask = request.getfixturevalue(f"{name}_brain_mask")
    (row,) = structure_statistics(mask, [BRAIN], image)
    reference = vtk_accumulate(image.array, mask.array > 0)
    assert row["voxels"] == reference["voxels"] == int((mask.array > 0).sum())
    assert row["volume_ml"] == pytest.approx(row["voxels"] * np.prod(image.spacing) / 1000.0, rel=1e-12)
    for key in ("mean", "std", "min", "max"):
        assert row[key] == pytest.approx(reference[key], rel=1e-9), key
    assert row["median"] == float(np.median(image.array[mask.array > 0]))


def test_itk_t1_volume_counts_its_anisotropic_voxels(itk_t1, itk_t1_brain_mask):
    """2 x 2 x 3 mm voxels: 12 microlitres each."""
    (row,) = structure_statistics(itk_t1_brain_mask, [BRAIN], itk_t1)
    assert itk_t1.spacing.tolist() == [2.0, 2.0, 3.0]
    assert row["volume_ml"] == pytest.approx(row["voxels"] * 0.012)


def test_an_empty_segment_has_no_intensities_and_a_blank_csv_cell(itk_t1, itk_t1_brain_mask, tmp_path):
    rows = structure_statistics(itk_t1_brain_mask, [BRAIN, SegmentLabel(7, "Absent")], itk_t1)
    assert rows[1]["voxels"] == 0 and rows[1]["volume_ml"] == 0 and math.isnan(rows[1]["mean"])
    write_statistics_csv(rows, tmp_path / "s.csv")
    table = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert [r["segment"] for r in table] == ["Brain", "Absent"] and table[1]["mean"] == ""


def test_an_image_on_another_grid_is_refused(itk_t1, colin27_brain_mask):
    from medai.errors import MedAIError

    with pytest.raises(MedAIError, match="not on the segmentation's grid"):
        structure_statistics(colin27_brain_mask, [BRAIN], itk_t1)


def test_segment_statistics_csv_of_a_batch(itk_t1, itk_t1_brain_mask, tmp_path):
    """`medai segment A B -o DIR --statistics stats.csv`: a row per case and segment; the brain volume of the ITK
    T1 is within 8 % of its reference skull strip's, the intensities are the image's under the written mask."""
    from medai.io import read_volume

    # the same head stored with J reversed (det < 0): the same physical image, so the same brain
    origin = itk_t1.lps_points([[0, itk_t1.size_ijk[1] - 1, 0]])[0]
    flipped = Volume(itk_t1.array[:, ::-1, :].copy(), itk_t1.spacing, origin, itk_t1.direction @ np.diag([1, -1, 1]))
    write_volume(flipped, tmp_path / "flipped.nrrd")
    command = [sys.executable, "-m", "medai.cli.main", "segment", str(ITK_T1), str(tmp_path / "flipped.nrrd"),
               "-o", str(tmp_path / "out"), "--format", ".nii.gz", "--statistics", str(tmp_path / "stats.csv"),
               "--progress", "none"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(open(tmp_path / "stats.csv")))
    assert [(r["case"], r["segment"]) for r in rows] == [(str(ITK_T1), "Brain"), (str(tmp_path / "flipped.nrrd"), "Brain")]
    reference_ml = float((itk_t1_brain_mask.array > 0).sum() * 0.012)
    for row, output, image in zip(rows, ("KmeansTest_T1UCharRaw.nii.gz", "flipped.nii.gz"), (itk_t1, flipped)):
        assert abs(float(row["volume_ml"]) / reference_ml - 1) < 0.08, row
        mask = read_volume(tmp_path / "out" / output).array > 0
        assert int(row["voxels"]) == int(mask.sum())
        assert float(row["mean"]) == pytest.approx(float(image.array[mask].mean()), rel=1e-5)
    assert rows[0]["volume_ml"] == rows[1]["volume_ml"]  # one head, however it is stored
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_console_statistics_table_next_to_the_segmentation(itk_t1):
    """MedAISegLogic.segment(..., statistics=True): a table node referenced by the segmentation, with the engine's
    numbers; an overlapping segment added by hand counts all of its voxels."""
    import slicer

    from medai.slicer import (MedAISegLogic, init_headless, labels_from_segmentation_node, node_from_volume,
                              segment_statistics_table)
    from medai.slicer.evaluation import table_rows
    from medai.slicer.statistics import STATISTICS_REFERENCE

    init_headless()
    volume_node = node_from_volume(itk_t1, name="itk")
    seg_node = MedAISegLogic().segment(volume_node, model="brain-extraction", device="cpu", statistics=True)
    table = seg_node.GetNodeReference(STATISTICS_REFERENCE)
    (row,) = table_rows(table)
    label_map, labels = labels_from_segmentation_node(seg_node, volume_node)
    (engine,) = structure_statistics(label_map, labels, itk_t1)
    assert row["Segment"] == "Brain" and row["Volume (ml)"] == pytest.approx(engine["volume_ml"])
    assert row["Mean"] == pytest.approx(engine["mean"]) and row["Standard deviation"] == pytest.approx(engine["std"])

    overlap = (itk_t1.array > np.percentile(itk_t1.array, 90)).astype(np.uint8)
    segment_id = seg_node.GetSegmentation().AddEmptySegment("bright", "Bright")
    slicer.util.updateSegmentBinaryLabelmapFromArray(overlap, seg_node, segment_id, volume_node)
    rows = table_rows(segment_statistics_table(seg_node))
    assert [r["Segment"] for r in rows] == ["Brain", "Bright"]
    assert rows[0]["Voxel count"] == engine["voxels"] and rows[1]["Voxel count"] == int(overlap.sum())
