"""``medai classify`` as a user runs it: real child processes, the shipped image-type model, real CT and MR inputs
(NIfTI, NRRD, a DICOM slice, a PNG). A batch carries on past a bad input, whose row is left out of the CSV; one bad
input is one error line and no CSV; saliency maps land on each input's grid in the input's format family.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ITK_T1, PYRADIOMICS_DATA
from medai.io import read_volume

ITK_DATA = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
CLASSES = ["CT_body", "CT_head", "MR_body", "MR_head"]


def medai(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medai.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    from pydicom.data import get_testdata_file

    folder = tmp_path_factory.mktemp("inputs")
    bad = folder / "broken.nii.gz"
    bad.write_bytes(b"not an image")
    return {"t1": ITK_T1, "breast": PYRADIOMICS_DATA / "breast1_image.nrrd", "bad": bad,
            "ct_slice": Path(get_testdata_file("CT_small.dcm")), "png": ITK_DATA / "FatMRISlice.png"}


@pytest.fixture(scope="module")
def batch(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch")
    order = [inputs[k] for k in ("t1", "bad", "ct_slice", "breast", "png")]
    run = medai("classify", *order, "--model", "image-type", "-o", out / "results.csv", "--saliency", out / "maps",
                "--progress", "json")
    return out, run, order


def test_a_batch_carries_on_past_a_bad_input(batch, inputs):
    out, run, order = batch
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    summary = events[-1]
    assert summary["event"] == "summary" and summary["ok"] == 4 and summary["failed"] == 1
    assert summary["failures"][0]["case"] == str(inputs["bad"])
    assert str(inputs["bad"]) in summary["failures"][0]["error"] and "\n" not in summary["failures"][0]["error"]
    rows = read_rows(out / "results.csv")
    assert [r["input"] for r in rows] == [str(p) for p in order if p != inputs["bad"]]  # no row for the bad one
    assert list(rows[0]) == ["input", "label"] + [f"p_{c}" for c in CLASSES]


def test_each_row_has_a_probability_for_every_class_summing_to_one(batch, inputs):
    out, _, _ = batch
    expected = {str(inputs["t1"]): "MR", str(inputs["breast"]): "MR", str(inputs["ct_slice"]): "CT",
                str(inputs["png"]): "MR"}
    for row in read_rows(out / "results.csv"):
        p = {c: float(row[f"p_{c}"]) for c in CLASSES}
        assert sum(p.values()) == pytest.approx(1.0, abs=1e-5)
        assert row["label"] == max(p, key=p.get)
        assert row["label"].split("_")[0] == expected[row["input"]]


def test_saliency_maps_are_on_each_inputs_grid(batch, inputs):
    out, _, _ = batch
    maps = out / "maps"
    assert sorted(p.name for p in maps.iterdir()) == sorted([
        "KmeansTest_T1UCharRaw_saliency.nii.gz", "CT_small_saliency.nrrd", "breast1_image_saliency.nrrd",
        "FatMRISlice_saliency.nrrd"])
    for key, name in (("t1", "KmeansTest_T1UCharRaw_saliency.nii.gz"), ("ct_slice", "CT_small_saliency.nrrd"),
                      ("breast", "breast1_image_saliency.nrrd"), ("png", "FatMRISlice_saliency.nrrd")):
        image, saliency = read_volume(inputs[key]), read_volume(maps / name)
        assert saliency.same_grid(image, tol=1e-4), key  # NIfTI stores geometry as float32
        assert 0 <= saliency.array.min() and saliency.array.max() == pytest.approx(1.0) and saliency.array.std() > 0


def test_one_bad_input_is_one_line_and_no_csv(inputs, tmp_path):
    run = medai("classify", inputs["bad"], "-o", tmp_path / "results.csv")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medai: error: ") and str(inputs["bad"]) in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_an_existing_csv_is_kept_unless_overwrite(inputs, tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("keep me\n")
    run = medai("classify", inputs["ct_slice"], "-o", target, "--progress", "none")
    assert run.returncode == 1 and "already exists" in run.stderr and target.read_text() == "keep me\n"
    run = medai("classify", inputs["ct_slice"], "-o", target, "--progress", "none", "--overwrite", "--engine", "torch")
    assert run.returncode == 0, run.stderr
    assert read_rows(target)[0]["label"].startswith("CT")


def test_bad_options_are_one_line(inputs, tmp_path):
    run = medai("classify", inputs["ct_slice"], "-o", tmp_path, "--progress", "none")
    assert run.returncode == 1 and "is a folder" in run.stderr
    run = medai("classify", inputs["ct_slice"], "-o", tmp_path / "r.csv", "--model", "brain-extraction")
    assert run.returncode == 1 and "not a classification model" in run.stderr
    run = medai("classify", inputs["ct_slice"], inputs["t1"], "-o", tmp_path / "r.csv", "--mask", inputs["t1"])
    assert run.returncode == 1 and "one per input" in run.stderr
    assert not (tmp_path / "r.csv").exists()
