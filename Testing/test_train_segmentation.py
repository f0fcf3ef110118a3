"""``medai train --task segmentation`` end to end on real brain MRI: train -> package -> ``medai segment``.

A few iterations on small crops of Colin27 (brain = ch2bet > 0) with a validation crop given in the datalist, so
the assertions are about what such a run can promise: a valid package whose files match their SHA256s, whose
card reproduces the training pipeline exactly (the package, run through the engine's Segmenter, gets the Dice
training recorded), whose ONNX copy agrees with its TorchScript, and which ``medai segment`` runs on a held-out
crop of another scanner's T1 (the ITK example) and on an oblique copy, with label maps on the inputs' grids.
Runs are reproducible: the same seed gives the same epoch, a resumed run ends with the uninterrupted run's
weights bit for bit, another seed gives another run; Ctrl-C leaves no package and --resume picks up its checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import crop, geometry_variants
from medai.cli.main import main
from medai.io import read_volume, write_volume
from medai.metrics import dice

AAL = Path("/usr/share/mricron/templates/aal.nii.gz")  # on Colin27's grid; names in aal.nii.txt
#: crop starts (K, J, I) in Colin27 / the ITK T1; every crop is 32 x 40 x 40 voxels (K, J, I)
TRAIN = {"t0": (40, 60, 40), "t1": (80, 120, 100), "t2": (100, 30, 60)}
VALIDATION = {"v0": (60, 90, 20)}
SIZE = (32, 40, 40)
RUN = ("--task", "segmentation", "--roi", "24", "24", "24", "--width", "8", "--samples-per-case", "2",
       "--batch-size", "4", "--lr", "3e-3", "--progress", "none", "--modality", "MR")


def train(*args) -> int:
    return main(["train", *map(str, args)])


@pytest.fixture(scope="module")
def data(tmp_path_factory, colin27, colin27_brain_mask, itk_t1) -> Path:
    """A Decathlon datalist of real Colin27 crops, brain labels, and a labels file with terminology."""
    root = tmp_path_factory.mktemp("seg-data")
    for name, start in {**TRAIN, **VALIDATION}.items():
        write_volume(crop(colin27, start, SIZE), root / f"{name}.nii.gz")
        write_volume(crop(colin27_brain_mask, start, SIZE), root / f"{name}_brain.nii.gz")
    write_volume(crop(itk_t1, (20, 30, 40), SIZE), root / "held_itk.nii.gz")
    datalist = {"labels": {"0": "background", "1": "brain"},
                "training": [{"image": f"{n}.nii.gz", "label": f"{n}_brain.nii.gz"} for n in TRAIN],
                "validation": [{"image": f"{n}.nii.gz", "label": f"{n}_brain.nii.gz"} for n in VALIDATION]}
    (root / "dataset.json").write_text(json.dumps(datalist))
    terminology = {"category": {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"},
                   "type": {"value": "12738006", "scheme": "SCT", "meaning": "Brain"}}
    (root / "labels.json").write_text(json.dumps({"1": {"name": "Brain", "color": "#fafae1",
                                                        "terminology": terminology}}))
    return root


@pytest.fixture(scope="module")
def package(data, tmp_path_factory) -> Path:
    """Two epochs of SegResNet, seed 0."""
    out = tmp_path_factory.mktemp("seg-run") / "brain-tiny"
    assert train(data / "dataset.json", "-o", out, *RUN, "--epochs", 2, "--seed", 0, "--id", "brain-tiny",
                 "--labels-json", data / "labels.json") == 0
    return out


def weights(checkpoint: Path) -> dict:
    import torch

    return torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]


def test_package_is_a_valid_verified_card_with_its_training_record(package):
    from medai.models.card import load_card
    from medai.models.weights import sha256_of, verified_weight

    assert sorted(p.name for p in package.iterdir()) == ["card.json", "checkpoint.pt", "network.onnx", "network.ts",
                                                          "train.log", "training.json"]
    assert not any(p.name.startswith(".") for p in package.parent.iterdir()), "work or staging folder left behind"
    card = load_card(package / "card.json")
    assert verified_weight(card, "segmenter") == package / "network.ts"
    assert card.data["onnx_weights"]["segmenter"]["sha256"] == sha256_of(package / "network.onnx")
    assert card.data["inference"] == {"mode": "sliding-window", "roi_size": [24, 24, 24], "overlap": 0.25,
                                      "output": "softmax"}
    assert card.data["preprocessing"] == {"orientation": "RAS",
                                          "intensity": {"type": "quantile-zscore", "lower": 0.005, "upper": 0.995}}
    assert [(label.value, label.name) for label in card.labels] == [(1, "Brain")]
    assert card.labels[0].terminology.type.meaning == "Brain"
    record = json.loads((package / "training.json").read_text())
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    assert all(np.isfinite(h["loss"]) and 0 <= h["val_dice"] <= 1 for h in record["history"])
    assert record["best_metric"]["val_dice"] == max(h["val_dice"] for h in record["history"])
    assert record["seed"] == 0 and record["versions"]["monai"]
    cases = record["data"]["training"] + record["data"]["validation"]
    assert cases and all(not Path(case[key]).is_absolute() for case in cases for key in ("image", "label")), \
        "a package records the training files relative to the datalist, never the user's absolute paths"
    log = (package / "train.log").read_text()
    assert "epoch 1/2  loss" in log and "epoch 2/2  loss" in log and "val_dice" in log


def test_package_reproduces_the_validation_dice_training_recorded(package, data):
    """The card's preprocessing and sliding window are training's: the Segmenter gets the same Dice."""
    from medai.pipeline.segment import Segmenter

    record = json.loads((package / "training.json").read_text())
    image, truth = read_volume(data / "v0.nii.gz"), read_volume(data / "v0_brain.nii.gz")
    result = Segmenter(str(package / "card.json"), device="cpu")(image)
    assert result.label_map.same_grid(image)
    found = dice(result.label_map.array == 1, truth.array == 1)
    assert found == pytest.approx(record["best_metric"]["val_dice"], abs=1e-3)


def test_onnx_copy_agrees_with_torchscript_on_a_real_patch(package, data):
    import onnxruntime
    import torch

    from medai.pipeline.intensity import normalize

    image = read_volume(data / "v0.nii.gz").array.astype(np.float32)[:24, :24, :24]
    x = normalize(torch.from_numpy(image)[None, None], {"type": "quantile-zscore", "lower": 0.005, "upper": 0.995})
    with torch.no_grad():
        expected = torch.jit.load(str(package / "network.ts"))(x).numpy()
    session = onnxruntime.InferenceSession(str(package / "network.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4


def test_medai_segment_runs_the_package_on_held_out_and_oblique_images(package, data, tmp_path):
    held = read_volume(data / "held_itk.nii.gz")
    oblique = geometry_variants(held)["oblique"]
    write_volume(oblique, tmp_path / "oblique.nii.gz")
    for source in (data / "held_itk.nii.gz", tmp_path / "oblique.nii.gz"):
        target = tmp_path / f"{source.name.split('.')[0]}_seg.nii.gz"
        run = subprocess.run([sys.executable, "-m", "medai.cli.main", "segment", str(source), "-o", str(target),
                              "--model", str(package), "--progress", "none"],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        labels, image = read_volume(target), read_volume(source)
        assert labels.same_grid(image, tol=1e-4), (labels, image)
        assert set(np.unique(labels.array)) <= {0, 1}


def test_same_seed_repeats_an_epoch_and_resume_continues_it_exactly(package, data, tmp_path):
    first = json.loads((package / "training.json").read_text())["history"]
    out = tmp_path / "resumed"
    assert train(data / "dataset.json", "-o", out, *RUN, "--epochs", 1, "--seed", 0) == 0
    one = json.loads((out / "training.json").read_text())["history"]
    assert one[0]["loss"] == first[0]["loss"] and one[0]["val_dice"] == first[0]["val_dice"]
    after_one = weights(out / "checkpoint.pt")

    assert train(data / "dataset.json", "-o", out, *RUN, "--epochs", 2, "--seed", 0, "--resume") == 0
    record = json.loads((out / "training.json").read_text())
    assert record["resumed_from_epoch"] == 1 and [h["epoch"] for h in record["history"]] == [1, 2]
    assert [(h["loss"], h["val_dice"]) for h in record["history"]] == [(h["loss"], h["val_dice"]) for h in first]
    resumed, uninterrupted = weights(out / "checkpoint.pt"), weights(package / "checkpoint.pt")
    assert resumed.keys() == uninterrupted.keys()
    assert all((resumed[k] == uninterrupted[k]).all() for k in resumed)
    assert any(not (resumed[k] == after_one[k]).all() for k in resumed), "the resumed epoch changed nothing"
    assert "resumed after epoch 1" in (out / "train.log").read_text()



def test_ctrl_c_leaves_no_package_and_resume_continues_from_the_last_epoch(data, package, tmp_path):
    """A run interrupted (SIGINT, as Ctrl-C) during epoch 2 of 5 keeps its checkpoint; --resume publishes it."""
    import signal
    import time

    out = tmp_path / "seed1"
    work = tmp_path / ".seed1.training"
    child = subprocess.Popen([sys.executable, "-m", "medai.cli.main", "train", str(data / "dataset.json"),
                              "-o", str(out), *RUN, "--epochs", "5", "--seed", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # a bound for a stuck child, not a measurement
    while not (work / "checkpoint.pt").exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 130 and err.strip().endswith("medai: cancelled"), err
    assert not out.exists() and (work / "checkpoint.pt").is_file() and (work / "train.log").is_file()

    assert train(data / "dataset.json", "-o", out, *RUN, "--epochs", 1, "--seed", 1, "--resume") == 0
    record = json.loads((out / "training.json").read_text())
    done = record["resumed_from_epoch"]
    assert done >= 1 and [h["epoch"] for h in record["history"]] == list(range(1, done + 1))
    assert not work.exists()
    seed0 = json.loads((package / "training.json").read_text())["history"]
    assert record["history"][0]["loss"] != seed0[0]["loss"], "the seed changed nothing"


@pytest.mark.parametrize("network", ["unet", "dynunet"])
def test_unet_and_dynunet_train_and_package(network, data, tmp_path):
    from medai.pipeline.segment import Segmenter

    out = tmp_path / network
    assert train(data / "dataset.json", "-o", out, *RUN, "--epochs", 1, "--network", network,
                 "--samples-per-case", 1) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["network"]["name"] == {"unet": "UNet", "dynunet": "DynUNet"}[network]
    image = read_volume(data / "v0.nii.gz")
    result = Segmenter(str(out / "card.json"), device="cpu")(image)
    assert result.label_map.same_grid(image) and set(np.unique(result.label_map.array)) <= {0, 1}


def test_a_spacing_run_records_it_in_the_card_and_segments_on_the_input_grid(data, tmp_path):
    """--spacing trains at that voxel size; the card carries it, so the Segmenter resamples the same way."""
    from medai.pipeline.segment import Segmenter

    out = tmp_path / "spaced"
    assert train(data / "dataset.json", "-o", out, *RUN, "--epochs", 1, "--network", "unet", "--samples-per-case", 1,
                 "--spacing", 1.5, 2, 2.5) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["preprocessing"]["spacing"] == [1.5, 2.0, 2.5]
    held = read_volume(data / "held_itk.nii.gz")  # 2 x 2 x 3 mm, coronal
    result = Segmenter(str(out / "card.json"), device="cpu")(held)
    assert result.label_map.same_grid(held) and set(np.unique(result.label_map.array)) <= {0, 1}


def test_several_labels_with_their_own_values_reach_the_label_map(colin27, tmp_path):
    """AAL's left caudate, putamen and thalamus (values 71, 73, 77) become channels 1..3 and come back as 71/73/77."""
    from medai.models.card import load_card
    from medai.pipeline.segment import Segmenter

    aal = read_volume(AAL)
    names = {71: "Caudate_L", 73: "Putamen_L", 77: "Thalamus_L"}
    entries = []
    for n, start in enumerate([(70, 100, 60), (66, 96, 64)]):
        regions = crop(aal, start, SIZE)
        write_volume(crop(colin27, start, SIZE), tmp_path / f"deep{n}.nii.gz")
        write_volume(regions.with_array(np.where(np.isin(regions.array, list(names)), regions.array, 0)),
                     tmp_path / f"deep{n}_aal.nii.gz")
        entries.append({"image": f"deep{n}.nii.gz", "label": f"deep{n}_aal.nii.gz"})
    datalist = {"labels": {"0": "background", **{str(v): name for v, name in names.items()}},
                "training": entries[:1], "validation": entries[1:]}
    (tmp_path / "dataset.json").write_text(json.dumps(datalist))
    out = tmp_path / "deep"
    assert train(tmp_path / "dataset.json", "-o", out, *RUN, "--epochs", 1, "--network", "unet") == 0
    card = load_card(out / "card.json")
    assert [(label.value, label.name) for label in card.labels] == sorted(names.items())
    assert card.data["network"]["args"]["out_channels"] == 4
    result = Segmenter(card, device="cpu")(read_volume(tmp_path / "deep1.nii.gz"))
    assert set(np.unique(result.label_map.array)) <= {0, 71, 73, 77}


def test_bad_datalist_is_one_line_naming_the_file_and_leaves_nothing(data, tmp_path, capsys):
    datalist = json.loads((data / "dataset.json").read_text())
    datalist["training"][1]["label"] = "missing_brain.nii.gz"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**datalist, "training": [
        {k: str(data / v) for k, v in entry.items()} for entry in datalist["training"]],
        "validation": [{k: str(data / v) for k, v in e.items()} for e in datalist["validation"]]}))
    out = tmp_path / "never"
    assert train(bad, "-o", out, *RUN, "--epochs", 1) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("medai: error: ")
    assert str(data / "missing_brain.nii.gz") in err and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_preprocessing_puts_images_and_labels_in_canonical_ras_at_the_asked_spacing(itk_t1, itk_t1_brain_mask):
    """Training arrays follow physical space: a flipped grid gives the mirrored array; resampling keeps the brain."""
    from medai.pipeline.orientation import canonical_reorientation
    from medai.training.preprocess import segmentation_arrays

    image, mask = crop(itk_t1, (20, 30, 30), SIZE), crop(itk_t1_brain_mask, (20, 30, 30), SIZE)  # coronal, 2x2x3 mm
    x, y = segmentation_arrays(image, mask, None)
    assert x.shape == y.shape and x.dtype == np.float32 and set(np.unique(y)) <= {0, 1}
    perm = canonical_reorientation(image).perm  # canonical axis n is voxel axis perm[n]
    flipped = geometry_variants(image)["flipped"]  # J axis reversed: the same voxels mirrored in space
    fx, fy = segmentation_arrays(flipped, flipped.with_array(mask.array), None)
    np.testing.assert_array_equal(fx, np.flip(x, perm.index(1)))
    np.testing.assert_array_equal(fy, np.flip(y, perm.index(1)))
    spacing = (2.5, 3.0, 4.0)  # along the canonical R, A, S axes (as MONAI's Orientationd, then Spacingd)
    coarse_x, coarse_y = segmentation_arrays(image, mask, spacing)
    extent_mm = np.array(image.size_ijk) * image.spacing  # 80 x 80 x 96 mm along I, J, K
    assert coarse_x.shape == coarse_y.shape == tuple(int(np.ceil(extent_mm[p] / s)) for p, s in zip(perm, spacing))
    assert coarse_y.sum() * np.prod(spacing) == pytest.approx(y.sum() * np.prod(image.spacing), rel=0.05)  # mm^3
