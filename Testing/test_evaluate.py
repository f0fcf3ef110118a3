"""Segmentation evaluation (medai.evaluation, ``medai evaluate``) on real masks, checked against MONAI's
independent metric implementations and against exact answers on anisotropic grids."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from conftest import crop, rotation
from medai import Volume
from medai.cli.main import main
from medai.evaluation import label_metrics, segmentation_metrics
from medai.io import write_volume

#: MONAI computes in float32 (Dice) / float64 on float32 inputs; ours is float64 throughout.
MONAI_RTOL = 1e-6


def monai_metrics(pred: np.ndarray, ref: np.ndarray, spacing_kji) -> tuple[float, float, float]:
    import torch
    from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance

    p = torch.from_numpy(pred[None, None].astype(np.float32))
    r = torch.from_numpy(ref[None, None].astype(np.float32))
    spacing = tuple(float(s) for s in spacing_kji)
    return (float(compute_dice(p, r).item()),
            float(compute_hausdorff_distance(p, r, percentile=95, spacing=spacing).item()),
            float(compute_average_surface_distance(p, r, symmetric=True, spacing=spacing).item()))


def _modified(mask: np.ndarray, how: str) -> np.ndarray:
    if how == "eroded":
        return ndimage.binary_erosion(mask, iterations=2)
    if how == "shifted":
        return np.roll(mask, (3, -2, 1), axis=(0, 1, 2))
    return np.roll(ndimage.binary_dilation(mask), 2, axis=0)  # "dilated+shifted"


@pytest.mark.parametrize("how", ["eroded", "shifted", "dilated+shifted"])
@pytest.mark.parametrize("image", ["colin27", "itk_t1"])
def test_agrees_with_monai_on_real_masks(request, image, how):
    """Colin27 (1 mm isotropic) and ITK T1 (2x2x3 mm) brain masks against modified copies: same numbers as MONAI.

    The surface definitions coincide (mask XOR its 6-connected erosion, distances to the other surface), so the
    agreement is to float32 precision, not approximate.
    """
    ref_volume = request.getfixturevalue(f"{image}_brain_mask")
    ref = ref_volume.array > 0
    pred = _modified(ref, how)
    ours = label_metrics(pred, ref, ref_volume.spacing[::-1])
    dice, hd95, msd = monai_metrics(pred, ref, ref_volume.spacing[::-1])
    assert ours["dice"] == pytest.approx(dice, rel=MONAI_RTOL)
    assert ours["hd95_mm"] == pytest.approx(hd95, rel=MONAI_RTOL)
    assert ours["msd_mm"] == pytest.approx(msd, rel=MONAI_RTOL)
    assert 0.8 < ours["dice"] < 1 and ours["hd95_mm"] > 0


def _slab(shape=(30, 40, 40), start=(8, 10, 10), size=(10, 20, 20)):
    mask = np.zeros(shape, bool)
    mask[tuple(slice(s, s + n) for s, n in zip(start, size))] = True
    return mask


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_anisotropic_exact_shift(axis):
    """A 20x20x10-voxel slab shifted by 3 voxels along one axis of a 0.7 x 1.3 x 2.9 mm grid (I,J,K): every
    surface distance is at most 3 steps along that axis and a whole face (29% of the surface) is exactly there, so
    HD95 and the Hausdorff distance are 3 x that axis's spacing -- 8.7, 3.9 or 2.1 mm, not one shared number."""
    spacing_ijk = np.array([0.7, 1.3, 2.9])
    spacing_kji = spacing_ijk[::-1]
    ref = _slab()
    pred = np.roll(ref, 3, axis=axis)
    m = label_metrics(pred, ref, spacing_kji)
    assert m["hd95_mm"] == pytest.approx(3 * spacing_kji[axis], abs=1e-12)
    assert m["volume_reference_ml"] == pytest.approx(10 * 20 * 20 * np.prod(spacing_ijk) / 1000, abs=1e-12)
    assert m["volume_difference_ml"] == 0 and m["volume_difference_percent"] == 0
    overlap = {0: 7 / 10, 1: 17 / 20, 2: 17 / 20}[axis]
    assert m["dice"] == pytest.approx(overlap, abs=1e-12)
    _, hd95, msd = monai_metrics(pred, ref, spacing_kji)
    assert hd95 == pytest.approx(m["hd95_mm"], rel=MONAI_RTOL) and msd == pytest.approx(m["msd_mm"], rel=MONAI_RTOL)


def test_oblique_direction_does_not_change_metrics(itk_t1_brain_mask):
    ref = itk_t1_brain_mask
    pred = ref.with_array(_modified(ref.array > 0, "shifted").astype(np.uint8))
    straight = segmentation_metrics(pred, ref)
    turn = rotation([1, 2, 3], 31.0) @ ref.direction
    oblique = segmentation_metrics(Volume(pred.array, pred.spacing, pred.origin, turn),
                                   Volume(ref.array, ref.spacing, ref.origin, turn))
    assert straight == oblique and list(straight) == [1]


def test_empty_masks():
    empty, some = np.zeros((5, 6, 7), bool), _slab((5, 6, 7), (1, 1, 1), (2, 3, 3))
    both = label_metrics(empty, empty, (1, 1, 1))
    assert (both["dice"], both["hd95_mm"], both["msd_mm"], both["volume_difference_percent"]) == (1, 0, 0, 0)
    for pred, ref in ((empty, some), (some, empty)):
        one = label_metrics(pred, ref, (1, 2, 3))
        assert one["dice"] == 0 and math.isnan(one["hd95_mm"]) and math.isnan(one["msd_mm"])
    assert label_metrics(empty, some, (1, 2, 3))["volume_difference_percent"] == -100
    assert math.isnan(label_metrics(some, empty, (1, 2, 3))["volume_difference_percent"])


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_single_case_writes_csv_json_png(tmp_path, itk_t1_brain_mask, capsys):
    ref = itk_t1_brain_mask
    pred_array = _modified(ref.array > 0, "eroded")
    write_volume(ref, tmp_path / "ref.nii.gz")
    write_volume(ref.with_array(pred_array.astype(np.uint8)), tmp_path / "pred.nii.gz")
    out = tmp_path / "out"
    assert main(["evaluate", str(tmp_path / "pred.nii.gz"), str(tmp_path / "ref.nii.gz"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pred.nii.gz" in printed and "wrote" in printed
    rows = _read_csv(out / "metrics.csv")
    assert len(rows) == 1 and rows[0]["label"] == "1" and rows[0]["resampled"] == "False"
    dice, hd95, msd = monai_metrics(pred_array, ref.array > 0, ref.spacing[::-1])
    assert float(rows[0]["dice"]) == pytest.approx(dice, rel=MONAI_RTOL)
    assert float(rows[0]["hd95_mm"]) == pytest.approx(hd95, rel=MONAI_RTOL)
    assert float(rows[0]["msd_mm"]) == pytest.approx(msd, rel=MONAI_RTOL)
    voxel_ml = np.prod(ref.spacing) / 1000
    assert float(rows[0]["volume_reference_ml"]) == pytest.approx((ref.array > 0).sum() * voxel_ml)
    assert float(rows[0]["volume_prediction_ml"]) == pytest.approx(pred_array.sum() * voxel_ml)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"] == 1 and summary["per_label"]["1"]["dice"]["mean"] == pytest.approx(float(rows[0]["dice"]))
    assert (out / "dice_boxplot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prediction_on_another_grid_is_resampled(tmp_path, itk_t1_brain_mask):
    """The same mask on a grid padded by two voxels in I (origin moved to match): resampled, Dice exactly 1."""
    ref = itk_t1_brain_mask
    padded = np.pad(ref.array, ((0, 0), (0, 0), (2, 0)))
    origin = ref.lps_points([[-2, 0, 0]])[0]
    write_volume(ref, tmp_path / "ref.nrrd")
    write_volume(Volume(padded, ref.spacing, origin, ref.direction), tmp_path / "pred.nii.gz")
    assert main(["evaluate", str(tmp_path / "pred.nii.gz"), str(tmp_path / "ref.nrrd"), "-o", str(tmp_path / "o")]) == 0
    row = _read_csv(tmp_path / "o" / "metrics.csv")[0]
    assert row["resampled"] == "True" and float(row["dice"]) == 1.0 and float(row["hd95_mm"]) == 0.0


@pytest.mark.parametrize("kind", ["seg", "rtstruct"])
def test_dicom_seg_or_rtstruct_as_reference(tmp_path, itk_t1, itk_t1_brain_mask, capsys, kind):
    """A real crop written as a DICOM series, its brain mask as a SEG (via --reference-series) or an RTSTRUCT (via
    the cases CSV's series column); the same mask as a NIfTI prediction scores Dice 1."""
    from medai.io.dicom.seg import write_dicom_seg
    from medai.io.dicom.series.read import read_dicom
    from medai.io.dicom.series.write import write_dicom_series
    from medai.io.dicom.rtstruct import write_rtstruct
    from medai.labels import SegmentLabel
    from medai.resample import resample_to_grid

    start, size = (24, 30, 8), (8, 56, 40)
    image = crop(itk_t1, start, size)
    mask = crop(itk_t1_brain_mask, start, size)
    write_dicom_series(image, tmp_path / "series", modality="MR")
    source = read_dicom(tmp_path / "series")
    on_source = resample_to_grid(mask, source, "nearest")
    writer = write_dicom_seg if kind == "seg" else write_rtstruct
    reference = tmp_path / f"{kind}.dcm"
    writer(on_source, [SegmentLabel(1, "Brain")], source, reference, algorithm_name="test", algorithm_version="1")
    write_volume(mask, tmp_path / "pred.nii.gz")
    out = tmp_path / "out"
    if kind == "seg":
        argv = ["evaluate", str(tmp_path / "pred.nii.gz"), str(reference)]
        assert main(argv + ["--reference-series", str(tmp_path / "series"), "-o", str(out)]) == 0
    else:
        (tmp_path / "cases.csv").write_text(f"case,prediction,reference,series\nct1,pred.nii.gz,{reference.name},series\n")
        argv = ["evaluate", "--cases", str(tmp_path / "cases.csv")]
        assert main(argv + ["-o", str(out)]) == 0
    rows = _read_csv(out / "metrics.csv")
    assert [(r["label"], r["name"], float(r["dice"]), float(r["hd95_mm"])) for r in rows] == [("1", "Brain", 1.0, 0.0)]
    assert float(rows[0]["volume_reference_ml"]) == pytest.approx((mask.array > 0).sum() * np.prod(mask.spacing) / 1000)
    capsys.readouterr()
    if kind == "seg":  # without its series the SEG cannot be placed: one line naming the file
        assert main(argv + ["-o", str(tmp_path / "out2")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "seg.dcm" in err[0] and "series" in err[0]
        assert not (tmp_path / "out2").exists()


def test_cases_csv_with_groups(tmp_path, itk_t1_brain_mask):
    ref = itk_t1_brain_mask
    write_volume(ref, tmp_path / "ref.nii.gz")
    mask = ref.array > 0
    predictions = {"a": mask, "b": ndimage.binary_erosion(mask), "c": ndimage.binary_erosion(mask, iterations=3),
                   "d": np.roll(mask, 2, axis=1)}
    sites = {"a": "north", "b": "north", "c": "south", "d": "south"}
    lines = ["case,prediction,reference,site"]
    for case, array in predictions.items():
        write_volume(ref.with_array(array.astype(np.uint8)), tmp_path / f"{case}.nii.gz")
        lines.append(f"{case},{case}.nii.gz,ref.nii.gz,{sites[case]}")
    (tmp_path / "cases.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert main(["evaluate", "--cases", str(tmp_path / "cases.csv"), "--group", "site", "-o", str(out)]) == 0
    rows = {r["case"]: r for r in _read_csv(out / "metrics.csv")}
    assert float(rows["a"]["dice"]) == 1.0 and [rows[c]["group"] for c in "abcd"] == ["north", "north", "south", "south"]
    summary = json.loads((out / "summary.json").read_text())
    for site in ("north", "south"):
        dices = [float(rows[c]["dice"]) for c in "abcd" if sites[c] == site]
        stats = summary["per_group"][site]["1"]["dice"]
        assert stats["n"] == 2 and stats["mean"] == pytest.approx(np.mean(dices))
        assert stats["median"] == pytest.approx(np.median(dices)) and stats["std"] == pytest.approx(np.std(dices))
    all_dice = [float(rows[c]["dice"]) for c in "abcd"]
    assert summary["per_label"]["1"]["dice"]["mean"] == pytest.approx(np.mean(all_dice))


def test_missing_prediction_label_gives_nan_as_blank_and_null(tmp_path, itk_t1_brain_mask):
    ref = itk_t1_brain_mask
    write_volume(ref, tmp_path / "ref.nii.gz")
    write_volume(ref.with_array(np.zeros_like(ref.array)), tmp_path / "pred.nii.gz")
    assert main(["evaluate", str(tmp_path / "pred.nii.gz"), str(tmp_path / "ref.nii.gz"), "-o", str(tmp_path / "o")]) == 0
    row = _read_csv(tmp_path / "o" / "metrics.csv")[0]
    assert row["dice"] == "0.0" and row["hd95_mm"] == "" and row["msd_mm"] == ""
    stats = json.loads((tmp_path / "o" / "summary.json").read_text())["per_label"]["1"]["hd95_mm"]
    assert stats == {"n": 1, "n_undefined": 1, "mean": None, "std": None, "median": None}


@pytest.mark.parametrize("problem", ["missing", "not-labels", "bad-csv"])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, itk_t1_brain_mask, capsys, problem):
    ref = itk_t1_brain_mask
    write_volume(ref, tmp_path / "ref.nii.gz")
    out = tmp_path / "out"
    if problem == "missing":
        argv, culprit = [str(tmp_path / "nope.nii.gz"), str(tmp_path / "ref.nii.gz")], "nope.nii.gz"
    elif problem == "not-labels":
        write_volume(ref.with_array(ref.array.astype(np.float32) * 0.5), tmp_path / "prob.nii.gz")
        argv, culprit = [str(tmp_path / "prob.nii.gz"), str(tmp_path / "ref.nii.gz")], "prob.nii.gz"
    else:
        (tmp_path / "cases.csv").write_text("name,pred\nx,y\n")
        argv, culprit = ["--cases", str(tmp_path / "cases.csv")], "cases.csv"
    assert main(["evaluate", *argv, "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("medai: error:") and culprit in err[0]
    assert not out.exists()


def test_batch_reports_every_failed_case_and_writes_nothing(tmp_path, itk_t1_brain_mask, capsys):
    """Two bad cases of three: each gets its own error line naming its file, then a count; exit 1, no output (the
    good case's metrics alone would misrepresent the set)."""
    ref = itk_t1_brain_mask
    write_volume(ref, tmp_path / "ref.nii.gz")
    write_volume(ref.with_array(ref.array.astype(np.float32) * 0.5), tmp_path / "prob.nii.gz")
    (tmp_path / "cases.csv").write_text("case,prediction,reference\ngood,ref.nii.gz,ref.nii.gz\n"
                                        "gone,nope.nii.gz,ref.nii.gz\nsoft,prob.nii.gz,ref.nii.gz\n")
    out = tmp_path / "out"
    assert main(["evaluate", "--cases", str(tmp_path / "cases.csv"), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "nope.nii.gz" in err[0] and "prob.nii.gz" in err[1] and "not a label map" in err[1]
    assert err[2] == "medai: 2 of 3 cases failed; nothing written"
    assert not out.exists()
