"""Brain extraction on real images, full size: Dice against reference masks and against deepbet's own
pipeline, the label map on the input's exact grid, and the same physical mask whatever the grid's orientation.

Measured Dice values are printed (``pytest -rP`` shows them).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from conftest import COLIN27, _require, geometry_variants, rotation
from medai import Volume
from medai.io import read_volume, write_volume
from medai.metrics import dice
from medai.models import get_card
from medai.models.card import card_from_dict
from medai.pipeline import Segmenter
from medai.pipeline.deoblique import axis_aligned_grid, closest_aligned_direction, is_oblique
from medai.resample import grid_like, resample_to_grid

#: pyradiomics' test cases, unpacked by scripts/setup.sh from its 3.0.1 source archive (BSD-3).
PYRADIOMICS_DATA = Path(__file__).resolve().parents[1] / ".data" / "pyradiomics"


@pytest.fixture(scope="session")
def pyradiomics_case():
    """``pyradiomics_case(name)`` -> path of ``{name}_image.nrrd`` (brain1, brain2, lung1, lung2, breast1)."""
    return lambda name: _require(PYRADIOMICS_DATA / f"{name}_image.nrrd")


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter("brain-extraction", device="cpu")


@pytest.fixture(scope="module")
def colin27_result(segmenter, colin27) -> Volume:
    return segmenter(colin27).label_map


def brain(volume: Volume) -> np.ndarray:
    return volume.array > 0


def on_input_grid(result: Volume, volume: Volume) -> None:
    assert result.same_grid(volume, tol=0) and result.array.shape == volume.array.shape
    assert result.array.dtype == np.uint8 and set(np.unique(result.array)) <= {0, 1}


# --- against reference masks ------------------------------------------------------------------------------

def test_colin27_against_its_skull_strip(colin27, colin27_result, colin27_brain_mask):
    on_input_grid(colin27_result, colin27)
    score = dice(brain(colin27_result), brain(colin27_brain_mask))
    print(f"Dice Colin27 vs ch2bet > 0: {score:.4f}")
    assert score >= 0.93


def test_itk_t1_against_its_skull_strip(segmenter, itk_t1, itk_t1_brain_mask):
    result = segmenter(itk_t1).label_map
    on_input_grid(result, itk_t1)
    score = dice(brain(result), brain(itk_t1_brain_mask))
    print(f"Dice ITK T1 vs its skull strip > 0: {score:.4f}")
    assert score >= 0.95


# --- against deepbet's own pipeline, on the same file -----------------------------------------------------

def deepbet_mask(image: Path, tmp_path: Path) -> Volume:
    """deepbet's ``run_bet`` on ``image`` (a NIfTI file), its mask read back with medai's reader."""
    from deepbet.bet import run_bet

    out = tmp_path / "deepbet_mask.nii.gz"
    run_bet([str(image)], mask_paths=[str(out)], no_gpu=True)
    return read_volume(out)


def test_agrees_with_deepbet_on_brain1(segmenter, pyradiomics_case, tmp_path):
    # deepbet reads NIfTI only: both tools read the same NIfTI copy of the NRRD.
    image = write_volume(read_volume(pyradiomics_case("brain1")), tmp_path / "brain1.nii.gz")
    volume = read_volume(image)
    ours = segmenter(volume).label_map
    theirs = deepbet_mask(image, tmp_path)
    on_input_grid(ours, volume)
    assert theirs.same_grid(volume), f"deepbet's mask is not on the input grid: {theirs!r} vs {volume!r}"
    score = dice(brain(ours), brain(theirs))
    print(f"Dice brain1 medai vs deepbet run_bet: {score:.4f} ({int(brain(ours).sum())} voxels)")
    assert brain(ours).sum() > 100_000  # a brain, not a speck: 0.78 x 0.78 x 6.5 mm voxels
    assert score >= 0.97


def test_agrees_with_deepbet_on_colin27(colin27, colin27_result, tmp_path):
    theirs = deepbet_mask(COLIN27, tmp_path)
    assert theirs.same_grid(colin27)
    score = dice(brain(colin27_result), brain(theirs))
    print(f"Dice Colin27 medai vs deepbet run_bet: {score:.4f}")
    assert score >= 0.97


# --- the same physical mask on any grid -------------------------------------------------------------------

def reverse_axes(volume: Volume, axes_ijk) -> Volume:
    """The same physical image stored with voxel axes ``axes_ijk`` (0=I, 1=J, 2=K) running the other way."""
    array, direction = volume.array, volume.direction.copy()
    last = np.zeros(3)
    for axis in axes_ijk:
        array = np.flip(array, axis=2 - axis)
        direction[:, axis] *= -1
        last[axis] = volume.size_ijk[axis] - 1
    origin = volume.lps_points([last])[0]
    return Volume(np.ascontiguousarray(array), volume.spacing, origin, direction)


def swap_i_k(volume: Volume) -> Volume:
    """The same physical image stored with I and K exchanged (as a sagittal acquisition would be)."""
    perm = [2, 1, 0]
    return Volume(np.ascontiguousarray(volume.array.transpose(2, 1, 0)), volume.spacing[perm], volume.origin,
                  volume.direction[:, perm])


def oblique_copy(volume: Volume, degrees: float) -> Volume:
    """``volume`` resampled linearly onto a grid rotated by ``degrees`` about an oblique axis, covering it."""
    grid = grid_like(volume, direction=rotation([1, 2, 3], degrees) @ volume.direction)
    return resample_to_grid(volume, grid, "linear")


def physical_dice(mask: Volume, reference: Volume) -> float:
    """Dice after resampling ``mask`` onto ``reference``'s grid (nearest)."""
    return dice(brain(resample_to_grid(mask, reference, "nearest")), brain(reference))


FLIPS = {
    "I reversed (det < 0)": lambda v: reverse_axes(v, [0]),
    "I and J reversed (det > 0)": lambda v: reverse_axes(v, [0, 1]),
    "I and K swapped (det < 0)": swap_i_k,
}


@pytest.mark.parametrize("variant", FLIPS)
def test_flipped_grid_gives_the_same_physical_mask(segmenter, colin27, colin27_result, variant):
    flipped = FLIPS[variant](colin27)
    assert not flipped.same_grid(colin27)
    assert np.sign(np.linalg.det(flipped.direction)) == (1 if "det > 0" in variant else -1)
    result = segmenter(flipped).label_map
    on_input_grid(result, flipped)
    score = physical_dice(result, colin27_result)
    print(f"Dice Colin27 {variant} vs original, physical space: {score:.4f}")
    assert score >= 0.98


def test_oblique_grid_gives_the_same_physical_mask(segmenter, colin27, colin27_result):
    oblique = oblique_copy(colin27, 20.0)
    assert is_oblique(oblique)
    result = segmenter(oblique).label_map
    on_input_grid(result, oblique)
    on_original = physical_dice(result, colin27_result)
    on_oblique = physical_dice(colin27_result, result)
    print(f"Dice Colin27 oblique (20 deg) vs original: {on_original:.4f} on the original grid, "
          f"{on_oblique:.4f} on the oblique grid")
    assert on_original >= 0.98 and on_oblique >= 0.98


# --- the card option preprocessing.deoblique --------------------------------------------------------------

def test_deoblique_grids():
    for name, volume in geometry_variants(Volume(np.zeros((4, 5, 6), np.uint8))).items():
        assert is_oblique(volume) == (name in ("oblique", "anisotropic")), name
        aligned = closest_aligned_direction(volume)
        assert (np.abs(aligned).sum(axis=0) == 1).all() and (np.abs(aligned).sum(axis=1) == 1).all()
    head = Volume(np.zeros((30, 40, 50), np.float32), [1.0, 1.5, 2.0], [5, -3, 7], rotation([1, 2, 3], 20))
    head.array[5:20, 10:30, 10:40] = 1
    grid = axis_aligned_grid(head)
    assert not is_oblique(grid) and np.allclose(grid.spacing, head.spacing)
    # it covers the content (not the zero padding around it): every content voxel centre lies inside
    inside = grid.ijk_indices(head.lps_points(np.argwhere(head.array > 0)[:, ::-1]))
    assert (inside >= -0.5).all() and (inside <= np.array(grid.size_ijk) - 0.5).all()
    assert grid.array.size < grid_like(head, direction=np.eye(3)).array.size / 2


def test_deoblique_option_on_a_steep_oblique_itk_t1(segmenter, itk_t1):
    """Opt-in: helps at 45 degrees here; measured no gain at 20 degrees, so the built-in card leaves it off."""
    card = get_card("brain-extraction")
    assert not card.preprocessing.get("deoblique")
    data = copy.deepcopy(card.data)
    data["preprocessing"]["deoblique"] = True
    deobliquing = Segmenter(card_from_dict(data, card.folder), device="cpu")

    upright = deobliquing(itk_t1).label_map  # axis-aligned input: the option changes nothing
    np.testing.assert_array_equal(upright.array, segmenter(itk_t1).label_map.array)
    oblique = oblique_copy(itk_t1, 45.0)
    plain = segmenter(oblique).label_map
    result = deobliquing(oblique).label_map
    on_input_grid(result, oblique)
    before, after = physical_dice(plain, upright), physical_dice(result, upright)
    print(f"Dice ITK T1 oblique (45 deg) vs upright: {before:.4f} without deoblique, {after:.4f} with it")
    assert after >= 0.98
