"""``medai train`` as a user runs it: bad data and bad options are one line naming the file, exit 1, nothing written.

Every case here fails before training starts (so the file is quick); what a good run writes is tested in
test_train_segmentation.py and test_train_classification.py. The data are real crops of Colin27.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import crop, truncate
from medai.cli.main import main
from medai.io import read_volume, write_volume


def medai(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medai.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, colin27, colin27_brain_mask) -> Path:
    """A Decathlon-style training folder (imagesTr/ + labelsTr/) of three real crops."""
    root = tmp_path_factory.mktemp("train-cli") / "Task01_Brain"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for n, start in enumerate([(40, 60, 40), (80, 120, 100), (100, 30, 60)]):
        write_volume(crop(colin27, start, (16, 24, 24)), root / "imagesTr" / f"brain_{n:03d}_0000.nii.gz")
        write_volume(crop(colin27_brain_mask, start, (16, 24, 24)), root / "labelsTr" / f"brain_{n:03d}.nii.gz")
    return root


def fails_with_one_line(capsys, args, *expected: str, output: Path) -> str:
    """Run ``medai train ARGS`` in-process: exit 1, one stderr line holding ``expected``, no output or work folder."""
    before = set(output.parent.iterdir()) if output.parent.exists() else set()
    assert main(["train", *map(str, args)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("medai: error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err
    after = set(output.parent.iterdir()) if output.parent.exists() else set()
    assert after == before, f"left behind: {sorted(p.name for p in after - before)}"
    return err


def test_decathlon_folder_pairs_nnunet_channel_names_with_labels(folder):
    from medai.training.datalist import load_datalist

    data = load_datalist(folder, "segmentation", validation_fraction=0.34, seed=3)
    assert data.split == "seeded" and len(data.training) == 2 and len(data.validation) == 1
    for case in data.training + data.validation:
        assert case.label.name == case.image.name.replace("_0000", "")
    again = load_datalist(folder, "segmentation", validation_fraction=0.34, seed=3)
    assert again.validation == data.validation  # the split is seeded


def test_class_folders_take_dicom_series_png_and_nifti_alike(tmp_path, colin27, pyradiomics_lung):
    """ROOT/<class>/<image file or DICOM folder>: every format reads into the same network input as its volume."""
    from PIL import Image

    from medai.io.dicom.series.write import write_dicom_series
    from medai.training.datalist import load_datalist
    from medai.training.preprocess import classification_input

    ct = crop(pyradiomics_lung["lung1"][0], (20, 200, 180), (6, 40, 48))
    mr = crop(colin27, (90, 0, 0), (1, 217, 181))
    (tmp_path / "CT").mkdir()
    (tmp_path / "MR").mkdir()
    write_dicom_series(ct, tmp_path / "CT" / "series", modality="CT", shuffle_names=True)
    write_volume(ct, tmp_path / "CT" / "ct.nrrd")
    Image.fromarray(mr.array[0]).save(tmp_path / "MR" / "slice.png")
    write_volume(mr, tmp_path / "MR" / "slice.nii.gz")
    data = load_datalist(tmp_path, "classification", validation_fraction=0.5, seed=0)
    cases = sorted(data.training + data.validation, key=lambda c: c.image.name)
    assert data.classes == ["CT", "MR"]
    assert [(c.image.name, c.label) for c in cases] == [("ct.nrrd", "CT"), ("series", "CT"), ("slice.nii.gz", "MR"),
                                                        ("slice.png", "MR")]
    spec = {"type": "zscore"}
    for size in ([32, 32, 1], [16, 16, 8]):
        from_dicom = classification_input(read_volume(tmp_path / "CT" / "series"), size, spec)
        assert tuple(from_dicom.shape) == ((1, *size[:2]) if size[2] == 1 else (1, *size))
        assert (from_dicom - classification_input(ct, size, spec)).abs().max() < 1e-5
    # a PNG has no geometry of its own (its rows run down the picture): the same pixels, the same slice content
    png = classification_input(read_volume(tmp_path / "MR" / "slice.png"), [32, 32, 1], spec)
    assert png.shape == (1, 32, 32) and abs(float(png.std()) - 1.0) < 1e-3


def test_missing_label_in_folder_names_the_image(folder, tmp_path, capsys):
    broken = tmp_path / "broken"
    (broken / "labelsTr").mkdir(parents=True)
    (broken / "imagesTr").mkdir()
    image = broken / "imagesTr" / "brain_000_0000.nii.gz"
    image.write_bytes((folder / "imagesTr" / "brain_000_0000.nii.gz").read_bytes())
    fails_with_one_line(capsys, [broken, "--task", "segmentation", "-o", tmp_path / "out"],
                        str(image), "has no label map", output=tmp_path / "out")


def test_unreadable_image_names_the_file(folder, tmp_path, capsys):
    copy = tmp_path / "data"
    for sub in ("imagesTr", "labelsTr"):
        (copy / sub).mkdir(parents=True)
        for f in (folder / sub).iterdir():
            (copy / sub / f.name).write_bytes(f.read_bytes())
    bad = truncate(copy / "imagesTr" / "brain_001_0000.nii.gz")
    fails_with_one_line(capsys, [copy, "--task", "segmentation", "-o", tmp_path / "out", "--roi", 16, 16, 16],
                        str(bad), output=tmp_path / "out")


def test_datalist_problems_are_one_line(folder, tmp_path, capsys):
    out = tmp_path / "out"
    not_json = tmp_path / "list.json"
    not_json.write_text("{training: oops")
    fails_with_one_line(capsys, [not_json, "--task", "segmentation", "-o", out], str(not_json), "not a JSON datalist",
                        output=out)
    no_label = tmp_path / "nolabel.json"
    no_label.write_text(json.dumps({"training": [{"image": str(folder / "imagesTr" / "brain_000_0000.nii.gz")}]}))
    fails_with_one_line(capsys, [no_label, "--task", "segmentation", "-o", out], str(no_label),
                        "training[0] needs a 'label' path", output=out)
    one_class = tmp_path / "oneclass.json"
    one_class.write_text(json.dumps({"training": [
        {"image": str(f), "label": "MR"} for f in sorted((folder / "imagesTr").iterdir())]}))
    fails_with_one_line(capsys, [one_class, "--task", "classification", "-o", out], str(one_class),
                        "at least two classes", output=out)
    unlisted = tmp_path / "unlisted.json"
    unlisted.write_text(json.dumps({"classes": ["CT", "MR"], "training": [
        {"image": str(f), "label": "PET"} for f in sorted((folder / "imagesTr").iterdir())]}))
    fails_with_one_line(capsys, [unlisted, "--task", "classification", "-o", out], "class 'PET'", output=out)
    fails_with_one_line(capsys, [tmp_path / "nowhere", "--task", "segmentation", "-o", out],
                        str(tmp_path / "nowhere"), "no such datalist", output=out)


def test_label_values_the_datalist_does_not_name_are_refused(folder, tmp_path, capsys):
    datalist = tmp_path / "dataset.json"
    datalist.write_text(json.dumps({"labels": {"0": "background", "2": "tumour"}, "training": [
        {"image": str(folder / "imagesTr" / f"brain_{n:03d}_0000.nii.gz"),
         "label": str(folder / "labelsTr" / f"brain_{n:03d}.nii.gz")} for n in range(3)]}))
    fails_with_one_line(capsys, [datalist, "--task", "segmentation", "-o", tmp_path / "out", "--roi", 16, 16, 16],
                        "labelsTr", "holds value 1", output=tmp_path / "out")


def test_bad_options_are_one_line(folder, tmp_path, capsys):
    out = tmp_path / "out"
    fails_with_one_line(capsys, [folder, "--task", "segmentation", "-o", out, "--roi", 20, 24, 24], "multiples of 8",
                        output=out)
    fails_with_one_line(capsys, [folder, "--task", "segmentation", "-o", out, "--network", "resnet"],
                        "not a segmentation network", output=out)
    fails_with_one_line(capsys, [folder, "--task", "classification", "-o", out, "--network", "resnet", "--size", "121"],
                        "not a resnet size", output=out)
    fails_with_one_line(capsys, [folder, "-o", out], "--task", output=out)
    fails_with_one_line(capsys, [folder, "--task", "segmentation", "-o", out, "--intensity", "range"],
                        "--intensity-range", output=out)
    fails_with_one_line(capsys, [folder, "--task", "segmentation", "-o", out, "--id", "Not An Id", "--roi", 16, 16, 16],
                        "invalid model card", "id", output=out)
    labels = tmp_path / "labels.json"
    labels.write_text("[1, 2]")
    fails_with_one_line(capsys, [folder, "--task", "segmentation", "-o", out, "--labels-json", labels], str(labels),
                        output=out)
    fails_with_one_line(capsys, [folder, "--task", "segmentation", "-o", out, "--resume"], str(out),
                        "no checkpoint to resume from", output=out)


def test_an_existing_package_is_not_replaced_without_resume_or_overwrite(folder, tmp_path, capsys):
    out = tmp_path / "package"
    out.mkdir()
    (out / "card.json").write_text("{}")
    fails_with_one_line(capsys, [folder, "--task", "segmentation", "-o", out], str(out), "already exists",
                        output=out)
    assert (out / "card.json").read_text() == "{}"


def test_the_command_line_process_prints_one_line_and_no_traceback(folder, tmp_path):
    run = medai("train", folder, "--task", "segmentation", "-o", tmp_path / "out", "--roi", 12, 16, 16)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr and "multiples of 8" in run.stderr
    assert not (tmp_path / "out").exists()


def test_help_lists_the_training_options():
    run = medai("train", "--help")
    assert run.returncode == 0
    for option in ("--task", "--network", "--epochs", "--batch-size", "--lr", "--roi", "--spacing", "--input-size",
                   "--intensity", "--seed", "--resume", "--device", "--id", "--name", "--modality", "--body-part",
                   "--labels-json", "--progress", "--dims", "--features", "--classifier"):
        assert option in run.stdout, option


def test_features_option_trains_a_classic_classifier_package(tmp_path, colin27, colin27_brain_mask):
    """``--features`` hands a feature datalist (image, mask, class) to the classic classifier trainer."""
    import numpy as np

    entries = []
    for n, start in enumerate([(100, 30, 60), (30, 140, 110), (60, 180, 80), (50, 100, 150)]):  # brain edges
        image, brain = crop(colin27, start, (16, 24, 24)), crop(colin27_brain_mask, start, (16, 24, 24))
        write_volume(image, tmp_path / f"image{n}.nii.gz")
        write_volume(brain, tmp_path / f"brain{n}.nii.gz")
        outside = image.with_array(((image.array > 20) & (brain.array == 0)).astype(np.uint8))
        write_volume(outside, tmp_path / f"outside{n}.nii.gz")
        entries += [{"image": f"image{n}.nii.gz", "mask": f"brain{n}.nii.gz", "label": "brain"},
                    {"image": f"image{n}.nii.gz", "mask": f"outside{n}.nii.gz", "label": "outside"}]
    (tmp_path / "features.json").write_text(json.dumps({"training": entries}))
    out = tmp_path / "tissue"
    run = medai("train", tmp_path / "features.json", "--features", "--classifier", "random-forest", "-o", out,
                "--id", "tissue", "--progress", "none")
    assert run.returncode == 0, run.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["id"] == "tissue" and card["inference"]["mode"] == "features"
    assert card["classes"] == ["brain", "outside"]
