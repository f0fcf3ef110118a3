"""Several input volumes per case: a two-channel model sees its channels aligned in physical space, in order.

The model is a MONAI UNet taking (T1, skull-stripped T1) of Colin27, with seeded weights (the last bias set so
the label map is neither empty nor full): what is tested is that MedAI hands the network the right voxels of each
channel, whatever grid each channel comes on. The reference is MONAI's own sliding-window inference on the two
channels stacked by hand on the first one's grid.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import COLIN27_BET, crop, rotation
from medai import Volume
from medai.errors import MedAIError
from medai.io import read_volume, write_volume
from medai.models.card import card_from_dict
from medai.models.weights import sha256_of
from medai.pipeline import Segmenter
from medai.pipeline.channels import align_channels, coverage
from medai.pipeline.orientation import canonical_reorientation
from medai.resample import grid_like, resample_to_grid

ARGS = {"spatial_dims": 3, "in_channels": 2, "out_channels": 2, "channels": [8, 16], "strides": [2],
        "num_res_units": 1}
INTENSITY = {"type": "zscore"}
INFERENCE = {"mode": "sliding-window", "roi_size": [32, 32, 32], "overlap": 0.25, "output": "logits"}


@pytest.fixture(scope="module")
def case(colin27):
    """(T1 crop, skull-stripped T1 crop) of Colin27 on one grid: two real images of one case."""
    t1 = crop(colin27, (70, 60, 5), (40, 56, 48))  # brain, skull and scalp: the channels differ
    stripped = crop(read_volume(COLIN27_BET), (70, 60, 5), (40, 56, 48))
    assert t1.same_grid(stripped)
    return t1, stripped


def seeded_card(folder, case) -> object:
    """A two-channel UNet card with seeded weights whose foreground covers 20-80 % of the case."""
    import torch
    from monai.inferers import sliding_window_inference
    from monai.networks.nets import UNet

    torch.manual_seed(3)
    network = UNet(**ARGS).eval()
    with torch.no_grad():
        logits = sliding_window_inference(reference_input(*case), (32, 32, 32), 1, network, overlap=0.25)[0]
        margin = (logits[1] - logits[0]).flatten()
        last = [m for m in network.modules() if isinstance(m, torch.nn.ConvTranspose3d | torch.nn.Conv3d)][-1]
        last.bias[1] -= float(margin.median())  # half the voxels each side: a label map worth comparing
    torch.save(network.state_dict(), folder / "unet2.pt")
    return card_from_dict({
        "schema_version": 1, "id": "two-channel-test", "name": "Two-channel test model", "version": "0.1",
        "task": "segmentation",
        "input": {"modality": "MR", "dimensions": 3,
                  "channels": [{"name": "T1"}, {"name": "T1 skull-stripped"}]},
        "labels": [{"value": 1, "name": "Foreground", "color": "#c08080"}],
        "runtime": "pytorch-state-dict", "network": {"name": "UNet", "args": ARGS},
        "weights": {"segmenter": {"path": "unet2.pt", "sha256": sha256_of(folder / "unet2.pt")}},
        "preprocessing": {"orientation": "RAS", "intensity": INTENSITY}, "inference": INFERENCE,
        "license": "MIT", "source": "seeded in Testing/test_channels.py"}, folder=folder)


def reference_input(first: Volume, second: Volume):
    """(1, 2, X, Y, Z): the channels on their common grid turned to RAS, each z-scored on its own (the card's
    zscore: torch's unbiased std), stacked."""
    import torch

    stacked = np.stack([v.array.transpose(2, 1, 0).astype(np.float32) for v in (first, second)])
    x = torch.from_numpy(np.ascontiguousarray(canonical_reorientation(first, "RAS").apply(stacked)))
    return torch.stack([(c - c.mean()) / c.std() for c in x])[None]


def reference_labels(card, first: Volume, second: Volume) -> np.ndarray:
    """MONAI's sliding-window inference of the card's network on the hand-stacked channels (K,J,I labels)."""
    import torch
    from monai.inferers import sliding_window_inference
    from monai.networks.nets import UNet

    network = UNet(**ARGS).eval()
    network.load_state_dict(torch.load(card.folder / "unet2.pt", weights_only=True))
    with torch.no_grad():
        logits = sliding_window_inference(reference_input(first, second), (32, 32, 32), 1, network, overlap=0.25,
                                          mode="gaussian")[0]
    labels = canonical_reorientation(first, "RAS").invert(logits.argmax(0).numpy().astype(np.uint8))
    return np.ascontiguousarray(labels.transpose(2, 1, 0))


@pytest.fixture(scope="module")
def card(case, tmp_path_factory):
    return seeded_card(tmp_path_factory.mktemp("two_channel"), case)


@pytest.fixture(scope="module")
def segmenter(card):
    return Segmenter(card, device="cpu", engine="torch")


def flipped_copy(volume: Volume) -> Volume:
    """The same image with its voxels stored in another order (I and K reversed, det > 0): no interpolation."""
    array = volume.array[::-1, :, ::-1].copy()
    origin = volume.lps_points([[volume.size_ijk[0] - 1, 0, volume.size_ijk[2] - 1]])[0]
    return Volume(array, volume.spacing, origin, volume.direction @ np.diag([-1.0, 1.0, -1.0]))


def test_channels_on_one_grid_give_monai_s_labels(case, card, segmenter):
    result = segmenter(list(case))
    assert result.label_map.same_grid(case[0])
    expected = reference_labels(card, *case)
    assert 0.2 < expected.mean() < 0.8
    np.testing.assert_array_equal(result.label_map.array, expected)


def test_a_channel_stored_in_another_voxel_order_is_aligned_exactly(case, segmenter):
    """The second channel flipped in storage (same physical image): every voxel centre lands on one of the first's."""
    same = segmenter(list(case)).label_map.array
    moved = segmenter([case[0], flipped_copy(case[1])]).label_map.array
    np.testing.assert_array_equal(moved, same)


def test_the_first_channel_sets_the_grid_of_the_result(case, segmenter):
    """A flipped first channel gives the same labels at the same physical places, on its own grid."""
    first = flipped_copy(case[0])
    result = segmenter([first, case[1]])
    assert result.label_map.same_grid(first)
    back = resample_to_grid(result.label_map, case[0], "nearest")  # voxel centres coincide: a pure reordering
    np.testing.assert_array_equal(back.array, segmenter(list(case)).label_map.array)


def sitk_onto(volume: Volume, grid: Volume) -> Volume:
    """``volume`` resampled linearly onto ``grid`` by SimpleITK directly (an independent route to the same place)."""
    import SimpleITK as sitk

    def image(v: Volume):
        out = sitk.GetImageFromArray(v.array.astype(np.float32))
        out.SetSpacing(v.spacing.tolist()), out.SetOrigin(v.origin.tolist())
        out.SetDirection(v.direction.ravel().tolist())
        return out

    moved = sitk.Resample(image(volume), image(grid), sitk.Transform(), sitk.sitkLinear, 0.0)
    return grid.with_array(sitk.GetArrayFromImage(moved))


def test_an_oblique_anisotropic_second_channel_is_resampled_in_physical_space(case, card, segmenter):
    """The second channel given on a 25-degree oblique 0.8 x 1.3 x 1.7 mm grid: MedAI brings it back onto the
    first channel's grid in millimetres (close to the original image; a 1 mm shift is far worse), and the network
    sees exactly that image (MONAI's labels on the channels aligned by SimpleITK directly)."""
    first, second = case
    grid = grid_like(second, spacing=[0.8, 1.3, 1.7], direction=rotation([1, 2, 2], 25.0) @ second.direction,
                     margin_mm=2.0)
    oblique = sitk_onto(second, grid)
    aligned = align_channels([first, oblique], card).volumes[1]
    assert aligned.same_grid(first)
    brain = second.array > 0
    error = np.abs(aligned.array - second.array)[brain].mean() / second.array[brain].mean()
    shifted = Volume(second.array, second.spacing, second.origin + [1.0, 0.0, 0.0], second.direction)
    shift_error = np.abs(sitk_onto(shifted, first).array - second.array)[brain].mean() / second.array[brain].mean()
    assert error < 0.06 and shift_error > 1.5 * error, (error, shift_error)

    result = segmenter([first, oblique])
    assert result.label_map.same_grid(first) and not any("covers" in w for w in result.warnings)
    expected = reference_labels(card, first, sitk_onto(oblique, first))
    assert np.mean(result.label_map.array == expected) >= 0.999


def test_channel_order_matters(case, segmenter):
    swapped = segmenter([case[1], case[0]]).label_map.array
    assert np.mean(swapped != segmenter(list(case)).label_map.array) > 0.05


def test_a_wrong_number_of_images_is_refused_naming_the_channels(case, segmenter):
    with pytest.raises(MedAIError, match=r"takes 2 images per case \(T1, T1 skull-stripped\); got 1"):
        segmenter(case[0])
    with pytest.raises(MedAIError, match="got 3"):
        segmenter([case[0], case[1], case[1]])


def test_a_channel_of_another_place_is_refused_and_a_partial_one_warned(case, segmenter):
    first, second = case
    far = Volume(second.array, second.spacing, second.origin + [0.0, 0.0, 400.0], second.direction)
    with pytest.raises(MedAIError, match="covers only 0% of channel 'T1'"):
        segmenter([first, far])
    shifted = Volume(second.array, second.spacing, second.origin + [6.0, 0.0, 0.0], second.direction)
    assert 0.5 < coverage(shifted, first) < 0.99
    result = segmenter([first, shifted])
    assert any("channel 'T1 skull-stripped' covers" in w for w in result.warnings)


def test_align_channels_passes_a_channel_on_the_same_grid_untouched(case, card):
    aligned = align_channels(list(case), card)
    assert aligned.volumes[1] is case[1] and aligned.names == ["T1", "T1 skull-stripped"]


def test_cli_channel_option_matches_the_engine_and_refuses_a_missing_channel(case, card, segmenter, tmp_path):
    first, second = case
    write_volume(first, tmp_path / "t1.nii.gz")
    write_volume(flipped_copy(second), tmp_path / "stripped.nrrd")
    card_path = card.folder / "card.json"
    card_path.write_text(json.dumps(card.data))
    command = [sys.executable, "-m", "medai.cli.main", "segment", str(tmp_path / "t1.nii.gz"), "--channel",
               str(tmp_path / "stripped.nrrd"), "--model", str(card_path), "-o", str(tmp_path / "out.nii.gz"),
               "--engine", "torch", "--progress", "none"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = read_volume(tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(written.array, segmenter(list(case)).label_map.array)

    missing = subprocess.run([sys.executable, "-m", "medai.cli.main", "segment", str(tmp_path / "t1.nii.gz"),
                              "--model", str(card_path), "-o", str(tmp_path / "none.nii.gz"), "--progress", "none"],
                             capture_output=True, text=True)
    assert missing.returncode == 1
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "takes 2 images per case (T1, T1 skull-stripped)" in lines[0], missing.stderr
    assert "--channel" in lines[0] and not (tmp_path / "none.nii.gz").exists()


def test_console_api_takes_one_volume_node_per_channel(case, card, segmenter):
    """MedAISegLogic.segment([node, node]) on real MRML: the second node under a parent transform (its voxels moved
    the other way) is aligned by its world position; the segmentation sits on the first node's grid."""
    import vtk

    from medai.slicer import MedAISegLogic, init_headless, labels_from_segmentation_node, node_from_volume

    scene = init_headless()
    first, second = case
    moved = Volume(second.array, second.spacing, second.origin - [0.0, 0.0, 30.0], second.direction)
    nodes = [node_from_volume(first, name="t1"), node_from_volume(moved, name="stripped")]
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(2, 3, 30.0)  # RAS superior = LPS +z: back where the image belongs
    transform.SetMatrixTransformToParent(shift)
    nodes[1].SetAndObserveTransformNodeID(transform.GetID())
    seg_node = MedAISegLogic().segment(nodes, model=card, device="cpu", engine="torch")
    assert seg_node.GetName() == "t1 two-channel-test"
    label_map, _ = labels_from_segmentation_node(seg_node, nodes[0])
    assert label_map.same_grid(first)
    np.testing.assert_array_equal(label_map.array > 0, segmenter(list(case)).label_map.array > 0)
