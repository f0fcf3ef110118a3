"""``medai features`` end to end on pyradiomics' real cases: one image and mask, a datalist batch where one case
fails (one line naming the file, the others complete), and no output at all when the only case fails."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PYRADIOMICS_DATA
from medai.features import FEATURE_NAMES, FeatureSettings, extract_features
from medai.io import read_volume

MEDAI = [sys.executable, "-m", "medai.cli.main"]


def medai(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*MEDAI, *map(str, args)], capture_output=True, text=True, timeout=300)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def engine(case: str, **settings) -> dict[str, float]:
    return extract_features(read_volume(PYRADIOMICS_DATA / f"{case}_image.nrrd"),
                            read_volume(PYRADIOMICS_DATA / f"{case}_label.nrrd"), FeatureSettings(**settings))


def test_one_image_and_mask(tmp_path):
    out = tmp_path / "features.csv"
    run = medai("features", PYRADIOMICS_DATA / "breast1_image.nrrd", PYRADIOMICS_DATA / "breast1_label.nrrd",
                "-o", out, "--voxel-array-shift", "2000", "--progress", "none")
    assert run.returncode == 0, run.stderr
    (row,) = read_rows(out)
    assert list(row)[:3] == ["image", "mask", "mask_label"] and list(row)[3:] == list(FEATURE_NAMES)
    expected = engine("breast1", voxelArrayShift=2000)
    assert {name: float(row[name]) for name in FEATURE_NAMES} == expected  # repr round-trips doubles exactly


def test_batch_with_a_bad_case(tmp_path):
    """lung1's mask given with brain2's image: that case fails on one line naming the mask; the rest complete."""
    data = PYRADIOMICS_DATA
    datalist = tmp_path / "cases.json"
    datalist.write_text(json.dumps({"training": [
        {"image": str(data / "brain2_image.nrrd"), "mask": str(data / "brain2_label.nrrd"), "label": "MR"},
        {"image": str(data / "brain2_image.nrrd"), "mask": str(data / "lung1_label.nrrd"), "label": "CT"},
        {"image": str(data / "lung2_image.nrrd"), "mask": str(data / "lung2_label.nrrd"), "label": "CT"},
    ]}))
    out = tmp_path / "features.csv"
    run = medai("features", datalist, "-o", out, "--progress", "json")
    assert run.returncode == 1
    events = [json.loads(line) for line in run.stdout.splitlines()]
    failed = [e for e in events if e["event"] == "case_failed"]
    assert len(failed) == 1 and failed[0]["error"].startswith(f"{data / 'lung1_label.nrrd'}: the mask is not on")
    assert "\n" not in failed[0]["error"]
    assert events[-1]["event"] == "summary" and events[-1]["ok"] == 2 and events[-1]["failed"] == 1
    rows = read_rows(out)
    assert [Path(r["mask"]).name for r in rows] == ["brain2_label.nrrd", "lung2_label.nrrd"]
    assert [r["class"] for r in rows] == ["MR", "CT"]
    assert float(rows[1]["original_glcm_Contrast"]) == engine("lung2")["original_glcm_Contrast"]


def test_failed_single_case_writes_nothing(tmp_path):
    out = tmp_path / "features.csv"
    run = medai("features", PYRADIOMICS_DATA / "breast1_image.nrrd", PYRADIOMICS_DATA / "breast1_label.nrrd",
                "-o", out, "--label", "7")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == \
        f"medai: error: {PYRADIOMICS_DATA / 'breast1_label.nrrd'}: the mask has no voxel with label 7"
    assert "Traceback" not in run.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_without_overwrite(tmp_path):
    out = tmp_path / "features.csv"
    out.write_text("keep me\n")
    run = medai("features", PYRADIOMICS_DATA / "breast1_image.nrrd", PYRADIOMICS_DATA / "breast1_label.nrrd", "-o", out)
    assert run.returncode == 1 and "already exists" in run.stderr
    assert out.read_text() == "keep me\n"


@pytest.mark.parametrize("args", [["only-one.nrrd"], ["a.nrrd", "b.nrrd", "c.nrrd"]])
def test_wrong_inputs_are_one_line_errors(tmp_path, args):
    run = medai("features", *args, "-o", tmp_path / "f.csv")
    assert run.returncode == 1 and run.stderr.strip() == "medai: error: give IMAGE MASK, or one datalist .json"
