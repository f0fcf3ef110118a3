"""The shipped brain-extraction-small package (recipes/brain_extraction_small): a small UNet distilled from the
brain-extraction model, checked on the ITK example T1, a volume its training never saw, against that volume's
independent skull strip; through the Segmenter (torch) and through ``medai segment`` (default engine), on the
original, a flipped and an oblique grid.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ITK_T1, rotation
from test_segment_accuracy import reverse_axes
from medai import Volume
from medai.io import read_volume
from medai.metrics import dice
from medai.models import get_card
from medai.models.weights import verified_weight
from medai.pipeline import Segmenter
from medai.resample import grid_like, resample_to_grid

PACKAGE = Path(__file__).resolve().parent.parent / "medai" / "models" / "packages" / "brain-extraction-small"
#: Dice against the ITK skull strip measured by recipes/brain_extraction_small/evaluate.py (README), less a margin.
MEASURED_DICE = 0.9496
FLOOR = MEASURED_DICE - 0.01


@pytest.fixture(scope="module")
def card():
    return get_card(PACKAGE)


@pytest.fixture(scope="module")
def segmenter(card) -> Segmenter:
    return Segmenter(card, "cpu", engine="torch")


@pytest.fixture(scope="module")
def itk_result(segmenter, itk_t1) -> Volume:
    return segmenter(itk_t1).label_map


def brain(volume: Volume) -> np.ndarray:
    return volume.array > 0


def test_package_files_and_card(card):
    names = sorted(p.name for p in PACKAGE.iterdir())
    assert names == ["card.json", "network.onnx", "network.ts", "train.log", "training.json"]
    assert all((PACKAGE / name).stat().st_size < 5_000_000 for name in names)
    assert card.id == "brain-extraction-small" and card.task == "segmentation"
    assert card.license.startswith("MIT")
    assert card.input["modality"] == "MR" and card.input["sequence"] == "T1w" and card.input["body_part"] == "head"
    teacher = get_card("brain-extraction")
    assert [(l.value, l.name, l.terminology) for l in card.labels] == [(l.value, l.name, l.terminology)
                                                                      for l in teacher.labels]
    assert card.inference["mode"] == "whole"
    assert verified_weight(card, "segmenter").name == "network.ts"


def test_held_out_itk_t1_against_its_skull_strip(itk_result, itk_t1, itk_t1_brain_mask):
    assert itk_result.same_grid(itk_t1)
    assert set(np.unique(itk_result.array)) == {0, 1}
    score = dice(brain(itk_result), brain(itk_t1_brain_mask))
    print(f"brain-extraction-small on the held-out ITK T1: Dice {score:.4f} vs its skull strip")
    assert score >= FLOOR


def test_medai_segment_with_the_package(tmp_path, itk_result, itk_t1, itk_t1_brain_mask):
    out = tmp_path / "brain.nii.gz"
    run = subprocess.run([sys.executable, "-m", "medai.cli.main", "segment", str(ITK_T1), "-o", str(out),
                          "--model", str(PACKAGE), "--progress", "none"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = read_volume(out)
    assert result.same_grid(itk_t1, tol=1e-4)
    assert dice(brain(result), brain(itk_t1_brain_mask)) >= FLOOR
    assert dice(brain(result), brain(itk_result)) >= 0.995  # default engine vs torch


def test_flipped_grid_gives_the_same_physical_mask(segmenter, itk_t1, itk_result):
    flipped = reverse_axes(itk_t1, [0])  # det < 0
    assert np.linalg.det(flipped.direction) < 0
    result = segmenter(flipped).label_map
    assert result.same_grid(flipped)
    np.testing.assert_array_equal(result.array[:, :, ::-1], itk_result.array)


def test_oblique_grid_against_the_skull_strip(segmenter, itk_t1, itk_t1_brain_mask):
    grid = grid_like(itk_t1, direction=rotation([1, 2, 3], 12.0) @ itk_t1.direction)
    oblique = resample_to_grid(itk_t1, grid, "linear")
    result = segmenter(oblique).label_map
    assert result.same_grid(oblique)
    score = dice(brain(resample_to_grid(result, itk_t1_brain_mask, "nearest")), brain(itk_t1_brain_mask))
    print(f"brain-extraction-small on the ITK T1 resampled 12 deg oblique: Dice {score:.4f} vs its skull strip")
    assert score >= FLOOR - 0.02
