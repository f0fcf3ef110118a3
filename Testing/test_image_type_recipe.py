"""The image-type recipe end to end, CI-short: real images cut into slices, ``medai train`` without one image at a
time (all its slices leave together), the held-out image classified by the fold's package. Two folds, two epochs,
six small real DICOM/PNG sources (one or more per class): this checks the machinery, not the accuracy, which
recipes/image_type/README.md reports for the full run.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "image_type"
SMALL = ["ct_small", "ct_pancreas", "ct_ect", "mr_fat", "mr_abdomen", "emri_small"]
HELD_OUT = ["ct_small", "mr_fat"]


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def lovo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("image-type")
    built = run(RECIPE / "build_dataset.py", folder / "data", "--slices", "3", "--copies", "2", "--sources", *SMALL)
    assert built.returncode == 0, built.stderr
    evaluated = run(RECIPE / "lovo.py", folder / "data", folder / "lovo", "--volumes", *HELD_OUT, "--epochs", "2")
    assert evaluated.returncode in (0, 1), evaluated.stderr  # 1: a modality wrong after two epochs
    return folder, evaluated


def test_the_dataset_holds_slices_of_every_source_with_hounsfield_units_kept(lovo):
    folder, _ = lovo
    datalist = json.loads((folder / "data" / "datalist.json").read_text())
    assert {item["volume"] for item in datalist["training"]} == set(SMALL)
    assert {item["label"] for item in datalist["training"]} == set(datalist["classes"])
    from medai.io import read_volume

    ct = read_volume(folder / "data" / next(i["image"] for i in datalist["training"] if i["volume"] == "ct_small"))
    assert ct.array.shape[0] == 1 and ct.array.min() < -500  # a CT slice keeps its Hounsfield units


def test_each_fold_trains_without_every_slice_of_its_held_out_image(lovo):
    folder, _ = lovo
    for name in HELD_OUT:
        fold = json.loads((folder / "lovo" / name / "datalist.json").read_text())
        assert fold["training"] and all(item["volume"] != name for item in fold["training"])
        assert not any(f"/{name}_" in item["image"] for item in fold["training"])
        card = json.loads((folder / "lovo" / name / "package" / "card.json").read_text())
        assert card["id"] == "image-type" and card["inference"]["input_size"] == [64, 64, 1]


def test_the_report_has_a_prediction_per_held_out_image(lovo):
    folder, evaluated = lovo
    with open(folder / "lovo" / "lovo.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["volume"] for r in rows] == HELD_OUT
    for row in rows:
        p = {k: float(v) for k, v in row.items() if k.startswith("p_")}
        assert len(p) == 4 and sum(p.values()) == pytest.approx(1.0, abs=1e-3)
        assert row["predicted"] == max(p, key=p.get)[2:]
        ct = p["p_CT_body"] + p["p_CT_head"]
        assert row["modality_right"] == str(("CT" if ct > 0.5 else "MR") == row["true"][:2])
    assert "held-out images" in evaluated.stdout.splitlines()[-1]
