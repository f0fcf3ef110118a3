"""``medai train --task classification`` on real images: CT (pyradiomics lung1) vs MR (Colin27) axial slices.

A 2D DenseNet trained for a few epochs on a class folder of real slices must classify held-out slices -- of the
training volumes, between the training slices, and of a volume it never saw, another scanner's MR (the ITK T1, as
PNG files) -- all correctly, through ``medai classify``. (One CT volume does not teach a CT it never saw: lung2,
whose body fills the field of view, is called MR by such a model; the image-type recipe trains on many volumes.)
The package is checked like any other: a valid card whose weights verify, an ONNX copy that agrees with the
TorchScript, JSON progress lines, a readable log. A 3D ResNet run checks the volume path: the same Classifier takes
a volume and a 2D image (a one-slice volume).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import COLIN27, ITK_T1, PYRADIOMICS_DATA, crop
from medai.io import read_volume, write_volume


def medai(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medai.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def axial_slice(volume, k: int):
    """Slice ``k`` (K axis: axial in these images) as a one-slice volume at its place in space."""
    return crop(volume, (k, 0, 0), (1, *volume.array.shape[1:]))


def write_png(volume, path: Path) -> None:
    """A uint8 one-slice volume as a PNG (the values are exact)."""
    from PIL import Image

    Image.fromarray(np.asarray(volume.array[0], np.uint8)).save(path)


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> dict[str, Path]:
    """ROOT/CT and ROOT/MR training slices of lung1 and Colin27; held out: slices of both between the training
    ones, and slices of another MR volume (the ITK T1, as PNG files)."""
    root = tmp_path_factory.mktemp("cls-data")
    train, held = root / "train", root / "held"
    held.mkdir()
    lung1 = read_volume(PYRADIOMICS_DATA / "lung1_image.nrrd")
    colin = read_volume(COLIN27)
    for name, volume, ks, held_ks in (("CT", lung1, range(4, 46, 4), (6, 18, 30, 42)),
                                      ("MR", colin, range(30, 160, 12), (36, 84, 132))):
        (train / name).mkdir(parents=True)
        for k in ks:
            write_volume(axial_slice(volume, k), train / name / f"{name.lower()}_{k:03d}.nii.gz")
        for k in held_ks:
            write_volume(axial_slice(volume, k), held / f"{name.lower()}_{k:03d}.nii.gz")
    itk = read_volume(ITK_T1)
    for k in range(12, 52, 7):
        write_png(axial_slice(itk, k), held / f"mr_itk_{k:03d}.png")
    return {"train": train, "held": held}


@pytest.fixture(scope="module")
def package(slices, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("cls-run") / "ct-vs-mr"
    run = medai("train", slices["train"], "--task", "classification", "-o", out, "--dims", 2, "--input-size", 64, 64,
                "--epochs", 6, "--batch-size", 4, "--lr", 3e-3, "--seed", 0, "--progress", "json")
    return out, run


def test_run_reports_json_progress_and_writes_a_verified_package(package):
    from medai.models.card import load_card
    from medai.models.weights import sha256_of, verified_weight

    out, run = package
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events[0] == {"event": "start", "cases": 6}
    done = [e for e in events if e["event"] == "case_done"]
    assert [e["epoch"] for e in done] == [1, 2, 3, 4, 5, 6]
    assert events[-1]["event"] == "summary" and events[-1]["failed"] == 0
    card = load_card(out / "card.json")
    assert card.data["classes"] == ["CT", "MR"]
    assert card.data["inference"] == {"mode": "whole", "input_size": [64, 64, 1], "resize_mode": "trilinear",
                                      "output": "softmax"}
    assert verified_weight(card, "classifier") == out / "network.ts"
    assert card.data["onnx_weights"]["classifier"]["sha256"] == sha256_of(out / "network.onnx")
    record = json.loads((out / "training.json").read_text())
    assert record["data"]["split"] == "seeded" and len(record["data"]["validation"]) == 4  # 20 % of 11 + 11, per class
    assert "class weights" in (out / "train.log").read_text()
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3, 4, 5, 6]


def test_held_out_slices_are_all_classified_right(package, slices, tmp_path):
    """Slices training never saw, of its volumes and of another scanner's MR (PNG files): every top class right."""
    out, run = package
    assert run.returncode == 0, run.stderr
    held = sorted(slices["held"].iterdir())
    table = tmp_path / "results.csv"
    classify = medai("classify", *held, "--model", out, "-o", table, "--progress", "none")
    assert classify.returncode == 0, classify.stderr
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == len(held)
    wrong = [(r["input"], r["label"]) for r in rows if r["label"] != Path(r["input"]).name.split("_")[0].upper()]
    assert not wrong, wrong
    for row in rows:
        assert float(row["p_CT"]) + float(row["p_MR"]) == pytest.approx(1.0, abs=1e-5)


def test_onnx_copy_agrees_with_torchscript_on_a_real_slice(package, slices):
    import onnxruntime
    import torch

    from medai.training.preprocess import classification_input

    out, _ = package
    x = classification_input(read_volume(next(slices["held"].glob("ct_*"))), [64, 64, 1], {"type": "zscore"})[None]
    with torch.no_grad():
        expected = torch.jit.load(str(out / "network.ts"))(x).numpy()
    session = onnxruntime.InferenceSession(str(out / "network.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4


def test_3d_resnet_takes_volumes_and_2d_images(tmp_path, colin27):
    """A 3D network on real volume crops; the packaged Classifier runs on a volume and on a one-slice image."""
    from medai.pipeline.classify import Classifier

    lung1 = read_volume(PYRADIOMICS_DATA / "lung1_image.nrrd")
    root = tmp_path / "volumes"
    root.mkdir()
    entries = []
    for n, start in enumerate([(5, 100, 100), (20, 200, 150), (30, 150, 250), (10, 250, 200)]):
        write_volume(crop(lung1, start, (12, 96, 96)), root / f"ct{n}.nii.gz")
        entries.append({"image": f"ct{n}.nii.gz", "label": "CT"})
    for n, start in enumerate([(40, 60, 40), (80, 100, 60), (100, 40, 90), (60, 120, 70)]):
        write_volume(crop(colin27, start, (40, 48, 48)), root / f"mr{n}.nii.gz")
        entries.append({"image": f"mr{n}.nii.gz", "label": "MR"})
    (root / "dataset.json").write_text(json.dumps({"classes": ["CT", "MR"], "training": entries[1:4] + entries[5:],
                                                   "validation": [entries[0], entries[4]]}))
    out = tmp_path / "resnet3d"
    run = medai("train", root / "dataset.json", "--task", "classification", "-o", out, "--network", "resnet",
                "--size", 10, "--width", 8, "--dims", 3, "--input-size", 32, 32, 16, "--epochs", 2,
                "--batch-size", 3, "--progress", "none")
    assert run.returncode == 0, run.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["network"]["name"] == "ResNet" and card["network"]["args"]["spatial_dims"] == 3
    assert card["inference"]["input_size"] == [32, 32, 16]
    classifier = Classifier(str(out / "card.json"), device="cpu", engine="torch")
    for image in (read_volume(root / "mr0.nii.gz"), axial_slice(lung1, 20)):
        result = classifier(image)
        assert set(result.probabilities) == {"CT", "MR"}
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
