"""The brain-extraction-small recipe end to end, short: teacher labels on two real head MRIs (downsampled to 3 mm),
augmented 32^3 samples, ``medai train`` for two epochs, the package, and ``medai segment`` with it on the held-out
ITK T1. The full recipe is the same script with ``--profile full`` (recipes/brain_extraction_small/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ITK_T1
from medai.io import read_volume
from medai.metrics import dice
from medai.models import get_card

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "brain_extraction_small"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("brain-small")
    run = subprocess.run([sys.executable, str(RECIPE / "run.py"), "--work", str(folder), "--profile", "short"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return folder


def test_data_holds_teacher_labelled_training_volumes_only(work):
    manifest = json.loads((work / "data" / "manifest.json").read_text())
    assert sorted(manifest["sources"]) == ["brain1", "brain2"]
    assert manifest["teacher"]["model"] == "brain-extraction"
    datalist = json.loads((work / "data" / "dataset.json").read_text())
    assert len(datalist["training"]) == 4 and len(datalist["validation"]) == 2  # 2 copies + the plain view, each
    assert "KmeansTest" not in json.dumps(datalist) + json.dumps(manifest)  # the held-out volume is never read
    for item in datalist["training"]:
        image, label = read_volume(work / "data" / item["image"]), read_volume(work / "data" / item["label"])
        assert image.array.shape == label.array.shape == (32, 32, 32) and label.same_grid(image)
        assert set(np.unique(label.array)) == {0, 1}
        assert 0.05 < label.array.mean() < 0.6  # a brain, neither empty nor everything


def test_training_ran_with_the_recorded_command(work):
    command = json.loads((work / "train_command.json").read_text())
    assert command[3:5] == ["train", str(work / "data" / "dataset.json")]
    training = json.loads((work / "package" / "training.json").read_text())
    assert training["epochs"] == 2 and training["seed"] == 0
    assert training["config"]["roi"] == [32, 32, 32] and training["config"]["network"] == "unet"
    assert len(training["history"]) == 2


def test_package_is_a_whole_view_brain_model(work):
    card = get_card(work / "package")
    assert card.id == "brain-extraction-small" and card.task == "segmentation"
    assert card.inference["mode"] == "whole" and card.inference["input_size"] == [32, 32, 32]
    assert [label.terminology for label in card.labels] == [label.terminology for label in get_card("brain-extraction").labels]
    assert sorted(p.name for p in (work / "package").iterdir()) == ["card.json", "network.onnx", "network.ts",
                                                                      "train.log", "training.json"]


def test_medai_segment_runs_the_short_package_on_the_held_out_t1(work, itk_t1, itk_t1_brain_mask):
    out = work / "itk_t1_brain.nii.gz"
    run = subprocess.run([sys.executable, "-m", "medai.cli.main", "segment", str(ITK_T1), "-o", str(out),
                          "--model", str(work / "package"), "--progress", "none"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = read_volume(out)
    assert result.same_grid(itk_t1, tol=1e-4)
    assert set(np.unique(result.array)) <= {0, 1}
    score = dice(result.array > 0, itk_t1_brain_mask.array > 0)
    print(f"short recipe (2 epochs, 32^3): Dice vs the ITK skull strip {score:.4f}")
    assert score > 0.4  # two epochs learn a rough brain; an untrained net gives ~0 (all background) or ~0.2 (all brain)
