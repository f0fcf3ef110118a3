"""MONAI bundles: a bundle made with MONAI's own tools from a UNet trained here on a real MRI runs through
``medai segment`` and the console API with the label map MONAI's own bundle inference gives.

The bundle: a small UNet trained for a few dozen steps (fixed seed) on Colin27 at 4 mm with ch2bet's brain as the
label; ``configs/metadata.json`` and ``configs/inference.json`` in the MONAI bundle format; ``models/model.pt`` the
state dict and ``models/model.ts`` made from it by ``monai.bundle.ckpt_export``. The reference: ``monai.bundle.run``
of the same inference.json on the same image file (MONAI's loader, transforms, inferer, Invertd and writer).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from medai.io import read_volume, write_volume
from medai.metrics import dice
from medai.resample import grid_like, resample_to_grid
from medai.volume import Volume
from conftest import geometry_variants

ROOT = Path(__file__).resolve().parent.parent
MEDAI = [sys.executable, "-m", "medai.cli.main"]
SPACING_MM = 4.0
ROI = [32, 32, 32]

NETWORK_DEF = {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [8, 16, 32],
               "strides": [2, 2], "num_res_units": 1}

METADATA = {
    "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
    "version": "0.1.0",
    "changelog": {"0.1.0": "trained in MedAI's tests"},
    "monai_version": "1.6.1",
    "pytorch_version": "2.13.0",
    "numpy_version": "2",
    "required_packages_version": {"nibabel": "5"},
    "name": "Colin27 brain UNet",
    "task": "Brain extraction on T1 MRI at 4 mm",
    "description": "A small UNet trained for a few dozen steps on Colin27 (ch2bet brain mask), for tests.",
    "authors": "MedAI tests",
    "copyright": "Copyright (c) MedAI contributors",
    "network_data_format": {
        "inputs": {"image": {"type": "image", "format": "magnitude", "modality": "MR", "num_channels": 1,
                             "spatial_shape": ROI, "dtype": "float32", "value_range": [0, 1],
                             "is_patch_data": True, "channel_def": {"0": "image"}}},
        "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": 2, "spatial_shape": ROI,
                             "dtype": "float32", "value_range": [0, 1], "is_patch_data": True,
                             "channel_def": {"0": "background", "1": "brain"}}},
    },
}

#: MONAI's bundle inference config, runnable by ``monai.bundle.run`` (without ignite: a plain loop as "run").
INFERENCE = {
    "imports": ["$import torch"],
    "bundle_root": ".",
    "output_dir": "$@bundle_root + '/eval'",
    "datalist": [],
    "device": "$torch.device('cpu')",
    "pixdim": [SPACING_MM, SPACING_MM, SPACING_MM],
    "network_def": NETWORK_DEF,
    "network": "$@network_def.to(@device)",
    "preprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "LoadImaged", "keys": "image"},
        {"_target_": "EnsureChannelFirstd", "keys": "image"},
        {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
        {"_target_": "Spacingd", "keys": "image", "pixdim": "@pixdim", "mode": "bilinear"},
        {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": 0, "a_max": 255, "b_min": 0.0, "b_max": 1.0,
         "clip": True},
        {"_target_": "EnsureTyped", "keys": "image"},
    ]},
    "dataset": {"_target_": "Dataset", "data": "$[{'image': i} for i in @datalist]", "transform": "@preprocessing"},
    "inferer": {"_target_": "SlidingWindowInferer", "roi_size": ROI, "sw_batch_size": 1, "overlap": 0.5,
                "mode": "gaussian"},
    "postprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "Activationsd", "keys": "pred", "softmax": True},
        {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image",
         "nearest_interp": False, "to_tensor": True},
        {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
        {"_target_": "KeepLargestConnectedComponentd", "keys": "pred", "applied_labels": [1]},
        {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir", "output_postfix": "seg",
         "separate_folder": False, "resample": False, "output_dtype": "$torch.uint8"},
    ]},
    "initialize": ["$@network.load_state_dict(torch.load(@bundle_root + '/models/model.pt', weights_only=True))",
                   "$@network.eval()"],
    "run": ["$[@postprocessing(dict(d, pred=@inferer(d['image'][None].to(@device), @network)[0])) for d in @dataset]"],
}


def four_mm(volume, interpolation):
    return resample_to_grid(volume, grid_like(volume, spacing=[SPACING_MM] * 3), interpolation)


def train_unet(image_path: Path, label_path: Path, steps: int = 40):
    """A UNet trained on one image with MONAI's transforms (the bundle's preprocessing); fixed seed."""
    import torch
    from monai.bundle import ConfigParser
    from monai.losses import DiceCELoss
    from monai.transforms import (Compose, DivisiblePadd, EnsureChannelFirstd, LoadImaged, Orientationd,
                                  ScaleIntensityRanged)
    from monai.utils import set_determinism

    set_determinism(seed=0)
    data = Compose([LoadImaged(["image", "label"]), EnsureChannelFirstd(["image", "label"]),
                    Orientationd(["image", "label"], "RAS"),
                    ScaleIntensityRanged("image", 0, 255, 0.0, 1.0, clip=True),
                    DivisiblePadd(["image", "label"], 4)])({"image": str(image_path), "label": str(label_path)})
    network = ConfigParser({"network_def": NETWORK_DEF}).get_parsed_content("network_def")
    optimiser = torch.optim.Adam(network.parameters(), 1e-2)
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    x, y = data["image"].as_tensor()[None], data["label"].as_tensor()[None]
    network.train()
    for _ in range(steps):
        optimiser.zero_grad()
        value = loss(network(x), y)
        value.backward()
        optimiser.step()
    set_determinism(None)
    return network.eval()


def build_bundle(folder: Path, image_path: Path, label_path: Path, steps: int = 40) -> Path:
    """A MONAI bundle in ``folder``: configs, models/model.pt (state dict) and models/model.ts (MONAI's ckpt_export)."""
    import torch
    from monai.bundle import ckpt_export

    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    (folder / "configs" / "metadata.json").write_text(json.dumps(METADATA, indent=2))
    (folder / "configs" / "inference.json").write_text(json.dumps(INFERENCE, indent=2))
    (folder / "LICENSE").write_text("Apache License, Version 2.0 (test bundle)\n")
    torch.save(train_unet(image_path, label_path, steps).state_dict(), folder / "models" / "model.pt")
    ckpt_export(net_id="network_def", filepath=str(folder / "models" / "model.ts"),
                ckpt_file=str(folder / "models" / "model.pt"), meta_file=str(folder / "configs" / "metadata.json"),
                config_file=str(folder / "configs" / "inference.json"), bundle_root=str(folder))
    return folder


def monai_bundle_inference(bundle: Path, image_path: Path, out_dir: Path) -> Path:
    """MONAI's own run of the bundle's inference.json on ``image_path``; returns the label file it writes."""
    import torch
    from monai.bundle import run

    with torch.no_grad():
        run(config_file=str(bundle / "configs" / "inference.json"), meta_file=str(bundle / "configs" / "metadata.json"),
            bundle_root=str(bundle), datalist=[str(image_path)], output_dir=str(out_dir))
    (written,) = out_dir.glob("*_seg.nii.gz")
    return written


@pytest.fixture(scope="module")
def case(tmp_path_factory, colin27, colin27_brain_mask):
    """The 4 mm image (original and a flipped copy), its label, the bundle and MONAI's results for both images."""
    folder = tmp_path_factory.mktemp("bundle-case")
    image, label = four_mm(colin27, "linear"), four_mm(colin27_brain_mask, "nearest")
    image = image.with_array(np.round(image.array).astype(np.int16))
    paths = {"image": folder / "colin27_4mm.nii.gz", "label": folder / "colin27_4mm_brain.nii.gz",
             "flipped": folder / "colin27_4mm_flipped.nii.gz"}
    write_volume(image, paths["image"])
    write_volume(label, paths["label"])
    write_volume(geometry_variants(image)["flipped"], paths["flipped"])
    bundle = build_bundle(folder / "colin27_brain_unet", paths["image"], paths["label"])
    monai = {name: read_volume(monai_bundle_inference(bundle, paths[name], folder / f"monai-{name}"))
             for name in ("image", "flipped")}
    return {"paths": paths, "bundle": bundle, "monai": monai, "label": read_volume(paths["label"]), "folder": folder}


def agreement(a, b) -> float:
    assert a.same_grid(b, tol=1e-3), "results are not on the same grid"
    return float((a.array.astype(np.int64) == b.array.astype(np.int64)).mean())


def medai(*args: str, home: Path) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, MEDAI_HOME=str(home))
    return subprocess.run([*MEDAI, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def state_dict_variant(bundle: Path, folder: Path) -> Path:
    """The bundle without models/model.ts: MedAI must build the UNet from network_def and load model.pt."""
    copy = shutil.copytree(bundle, folder / "colin27_brain_unet_pt", ignore=shutil.ignore_patterns("eval"))
    (copy / "models" / "model.ts").unlink()
    return copy


def zipped(bundle: Path, target: Path) -> Path:
    """The bundle as MONAI Model Zoo ships them: a zip holding the bundle's folder."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(bundle.rglob("*")):
            if path.is_file() and "eval" not in path.relative_to(bundle).parts:
                archive.write(path, Path(bundle.name) / path.relative_to(bundle))
    return target


def test_card_derived_from_the_bundle(case):
    from medai.models import get_card
    from medai.models.weights import sha256_of

    card = get_card(case["bundle"])
    assert card.id == "colin27_brain_unet" and card.task == "segmentation" and card.modality == "MR"
    assert [(label.value, label.name) for label in card.labels] == [(1, "brain")]
    assert card.data["runtime"] == "torchscript"
    assert card.weights["segmenter"] == {"path": "models/model.ts",
                                         "sha256": sha256_of(case["bundle"] / "models" / "model.ts")}
    assert card.preprocessing == {"orientation": "RAS", "spacing": [4.0, 4.0, 4.0], "intensity": {
        "type": "range", "a_min": 0.0, "a_max": 255.0, "b_min": 0.0, "b_max": 1.0, "clip": True}}
    assert card.inference == {"mode": "sliding-window", "roi_size": ROI, "overlap": 0.5, "blend_mode": "gaussian",
                              "output": "softmax"}
    assert card.postprocessing == {"argmax": True, "largest_component": True}
    pt_card = get_card(state_dict_variant(case["bundle"], case["folder"] / "derive"))
    assert pt_card.data["runtime"] == "pytorch-state-dict"
    args = {k: v for k, v in NETWORK_DEF.items() if k != "_target_"}
    assert pt_card.data["network"] == {"name": "UNet", "args": args}


def test_monai_reference_is_a_brain(case):
    """The network learned the brain: MONAI's own inference of the bundle overlaps ch2bet's mask."""
    assert dice(case["monai"]["image"].array > 0, case["label"].array > 0) > 0.8


@pytest.mark.parametrize("variant", ["folder", "state-dict", "zip"])
def test_medai_segment_gives_monai_bundle_result(case, variant, tmp_path):
    bundle = case["bundle"]
    extra = []
    if variant == "state-dict":
        bundle, extra = state_dict_variant(bundle, tmp_path), ["--engine", "torch"]
    elif variant == "zip":
        bundle = zipped(bundle, tmp_path / "colin27_brain_unet.zip")
    out = tmp_path / "brain.nii.gz"
    result = medai("segment", str(case["paths"]["image"]), "--model", str(bundle), "-o", str(out),
                   "--progress", "none", *extra, home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    score = agreement(read_volume(out), case["monai"]["image"])
    assert score >= 0.999, f"{variant}: {score:.5f} of voxels agree with MONAI's bundle inference"
    if variant == "zip":  # extracted once into the cache under MEDAI_HOME, nowhere else
        assert list((tmp_path / "home" / "cache" / "bundles").glob("*/colin27_brain_unet/configs/metadata.json"))


@pytest.mark.parametrize("variant", ["folder", "state-dict"])
def test_console_api_gives_monai_bundle_result_on_a_flipped_volume(case, variant, tmp_path, monkeypatch):
    from medai.slicer import MedAISegLogic, init_headless, labels_from_segmentation_node, load_volume_node

    monkeypatch.setenv("MEDAI_HOME", str(tmp_path / "home"))
    bundle = case["bundle"] if variant == "folder" else state_dict_variant(case["bundle"], tmp_path)
    init_headless()
    volume_node = load_volume_node(case["paths"]["flipped"])
    seg_node = MedAISegLogic().segment(volume_node, model=str(bundle), engine="torch")
    label_map, labels = labels_from_segmentation_node(seg_node, volume_node)
    assert [label.name for label in labels] == ["brain"]
    reference = resample_to_grid(case["monai"]["flipped"], label_map, "nearest")  # the same voxels, in physical space
    score = agreement(label_map, reference)
    assert score >= 0.999, f"{variant}: {score:.5f} of voxels agree with MONAI's bundle inference"
    assert label_map.array.sum() > 0.9 * (case["monai"]["flipped"].array > 0).sum()


def test_state_dict_with_pickled_code_is_refused(case, tmp_path):
    """A model.pt holding an object whose unpickling runs a command: refused, the command never runs."""
    import torch

    marker = tmp_path / "pickled-code-ran"
    bundle = state_dict_variant(case["bundle"], tmp_path)
    state = torch.load(bundle / "models" / "model.pt", weights_only=True)
    state["payload"] = _RunsCode(f"touch {marker}")
    torch.save(state, bundle / "models" / "model.pt")
    out = tmp_path / "brain.nii.gz"
    result = medai("segment", str(case["paths"]["image"]), "--model", str(bundle), "-o", str(out),
                   "--engine", "torch", "--progress", "none", home=tmp_path / "home")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pickled code" in lines[0] and "model.pt" in lines[0], result.stderr
    assert not marker.exists() and not out.exists()


class _RunsCode:
    """An object that runs a shell command when unpickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def test_medai_resamples_to_the_bundle_spacing_like_monai(case, colin27, tmp_path):
    """A 3 mm image given to the 4 mm bundle: MedAI resamples to the card's spacing and back, as MONAI's
    Spacingd and Invertd do; the grids MONAI and MedAI resample onto differ slightly, so agreement is not exact."""
    image = resample_to_grid(colin27, grid_like(colin27, spacing=[3.0, 3.0, 3.0]), "linear")
    path = tmp_path / "colin27_3mm.nii.gz"
    write_volume(image.with_array(np.round(image.array).astype(np.int16)), path)
    reference = read_volume(monai_bundle_inference(case["bundle"], path, tmp_path / "monai"))
    out = tmp_path / "brain.nii.gz"
    result = medai("segment", str(path), "--model", str(case["bundle"]), "-o", str(out), "--progress", "none",
                   home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    ours = read_volume(out)
    score = agreement(ours, reference)
    print(f"3 mm image, 4 mm bundle: {score:.5f} of voxels agree with MONAI; brain voxels "
          f"{int((ours.array > 0).sum())} (MedAI) vs {int((reference.array > 0).sum())} (MONAI)")
    assert score >= 0.99
    assert dice(ours.array > 0, reference.array > 0) >= 0.97


def test_card_spacing_is_along_the_canonical_axes(colin27):
    """A volume stored with its axes permuted (K along R-L) gets the card's X spacing along K."""
    from medai.pipeline.orientation import spacing_in_voxel_axes

    permuted = Volume(np.ascontiguousarray(colin27.array.transpose(2, 1, 0)), colin27.spacing[::-1].copy(),
                      colin27.origin, colin27.direction[:, ::-1].copy())
    assert np.allclose(spacing_in_voxel_axes(colin27, [1.0, 2.0, 3.0]), [1.0, 2.0, 3.0])
    assert np.allclose(spacing_in_voxel_axes(permuted, [1.0, 2.0, 3.0]), [3.0, 2.0, 1.0])
