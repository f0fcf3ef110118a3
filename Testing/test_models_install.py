"""Installing models into the user catalog: MONAI bundles (folder, zip) and model packages, listed, used by id,
replaced only with --force, removed; bad bundles refused with one line and nothing installed (MEDAI_HOME in tmp)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from medai.errors import MedAIError
from medai.io import read_volume, write_volume
from medai.models.weights import sha256_of
from test_bundle import build_bundle, four_mm, state_dict_variant, zipped

ROOT = Path(__file__).resolve().parent.parent


def medai(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MEDAI_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "medai.cli.main", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def made(tmp_path_factory, colin27, colin27_brain_mask):
    """A real 4 mm image and a bundle of a UNet trained briefly on it (installing needs a real bundle, not a good one)."""
    folder = tmp_path_factory.mktemp("install")
    image = four_mm(colin27, "linear")
    image = image.with_array(np.round(image.array).astype(np.int16))
    write_volume(image, folder / "image.nii.gz")
    write_volume(four_mm(colin27_brain_mask, "nearest"), folder / "label.nii.gz")
    bundle = build_bundle(folder / "colin27_brain_unet", folder / "image.nii.gz", folder / "label.nii.gz", steps=5)
    return {"image": folder / "image.nii.gz", "bundle": bundle, "folder": folder}


def installed_entries(home: Path) -> list[str]:
    models = home / "models"
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


def test_install_use_list_replace_remove_round_trip(made, tmp_path):
    home = tmp_path / "home"
    bundle = made["bundle"]
    result = medai(home, "models", "install", str(bundle))
    assert result.returncode == 0, result.stderr
    card = json.loads((home / "models" / "colin27_brain_unet" / "card.json").read_text())
    weight = bundle / "models" / "model.ts"
    assert card["weights"]["segmenter"] == {"path": "models/model.ts", "sha256": sha256_of(weight)}
    listing = medai(home, "models").stdout.splitlines()
    assert any(line.split()[:2] == ["colin27_brain_unet", "segmentation"] and "installed" in line for line in listing)
    assert any(line.startswith("brain-extraction") and "built-in" in line for line in listing)

    # used by id: the same label map as the bundle folder itself gives
    out = tmp_path / "by-id.nii.gz"
    assert medai(home, "segment", str(made["image"]), "--model", "colin27_brain_unet", "-o", str(out),
                 "--progress", "none", "--engine", "torch").returncode == 0
    from medai.pipeline import Segmenter

    direct = Segmenter(str(bundle), "cpu", "torch")(read_volume(made["image"])).label_map
    np.testing.assert_array_equal(read_volume(out).array, direct.array)

    again = medai(home, "models", "install", str(bundle))
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "already installed" in again.stderr
    assert medai(home, "models", "install", str(bundle), "--id", "brain-unet-copy").returncode == 0
    assert medai(home, "models", "install", str(bundle), "--force").returncode == 0
    assert installed_entries(home) == ["brain-unet-copy", "colin27_brain_unet"]

    for model_id in ("colin27_brain_unet", "brain-unet-copy"):
        assert medai(home, "models", "remove", model_id).returncode == 0
    assert installed_entries(home) == []
    assert "colin27_brain_unet" not in medai(home, "models").stdout
    builtin = medai(home, "models", "remove", "brain-extraction")
    assert builtin.returncode == 1 and "built into MedAI" in builtin.stderr


def test_install_zip_and_package_then_listed_by_the_slicer_logic(made, tmp_path, monkeypatch):
    from medai.models.install import install_model
    from medai.slicer.seg_logic import MedAISegLogic

    monkeypatch.setenv("MEDAI_HOME", str(tmp_path / "home"))
    archive = zipped(state_dict_variant(made["bundle"], tmp_path), tmp_path / "brain_pt.zip")
    card = install_model(archive)
    assert card.id == "colin27_brain_unet_pt" and card.data["runtime"] == "pytorch-state-dict"
    with zipfile.ZipFile(archive) as z:
        assert card.weights["segmenter"]["sha256"] == __import__("hashlib").sha256(
            z.read("colin27_brain_unet_pt/models/model.pt")).hexdigest()

    # a model package (card.json + network.ts, weights relative to the folder) chosen through its card.json
    package = tmp_path / "package"
    package.mkdir()
    shutil.copy(made["bundle"] / "models" / "model.ts", package / "network.ts")
    from medai.models import get_card

    data = dict(get_card(made["bundle"]).data, id="brain-package",
                weights={"segmenter": {"path": "network.ts", "sha256": sha256_of(package / "network.ts")}})
    (package / "card.json").write_text(json.dumps(data))
    installed = MedAISegLogic.install_model(package / "card.json")
    assert installed.folder == tmp_path / "home" / "models" / "brain-package"
    assert {"brain-extraction", "colin27_brain_unet_pt", "brain-package"} <= {c.id for c in MedAISegLogic.models()}

    # the same package shipped with MedAI (medai/models/packages/<name>/card.json): listed as built-in, not removable
    from medai.models import catalog
    from medai.models.install import remove_model

    monkeypatch.setattr(catalog, "BUILTIN_PACKAGES_DIR", tmp_path / "packages")
    shutil.copytree(package, tmp_path / "packages" / "brain")
    (tmp_path / "packages" / "brain" / "card.json").write_text(json.dumps(dict(data, id="shipped-brain")))
    shipped = {c.id: c for c in MedAISegLogic.models()}["shipped-brain"]
    assert catalog.is_builtin(shipped) and not catalog.is_builtin(installed)
    with pytest.raises(MedAIError, match="built into MedAI"):
        remove_model("shipped-brain")

    # a package whose weight does not match its card: refused, nothing new installed
    (package / "network.ts").write_bytes((package / "network.ts").read_bytes() + b"\0")
    with pytest.raises(MedAIError, match="SHA256"):
        install_model(package, model_id="tampered")
    assert installed_entries(tmp_path / "home") == ["brain-package", "colin27_brain_unet_pt"]


def _no_metadata(bundle: Path, tmp: Path) -> Path:
    (bundle / "configs" / "metadata.json").unlink()
    return bundle


def _foreign_target(bundle: Path, tmp: Path) -> Path:
    bundle = state_dict_variant(bundle, tmp)
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    config["network_def"]["_target_"] = "os.system"
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    return bundle


def _no_inferer(bundle: Path, tmp: Path) -> Path:
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    del config["inferer"]
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    return bundle


def _classifier(bundle: Path, tmp: Path) -> Path:
    metadata = json.loads((bundle / "configs" / "metadata.json").read_text())
    metadata["network_data_format"]["outputs"]["pred"]["format"] = "classification"
    (bundle / "configs" / "metadata.json").write_text(json.dumps(metadata))
    return bundle


def _traversal_zip(bundle: Path, tmp: Path) -> Path:
    archive = zipped(bundle, tmp / "evil.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("../../outside.txt", "written outside the extraction folder")
    return archive


@pytest.mark.parametrize("breakage, message", [
    (_no_metadata, "configs/metadata.json (metadata) is missing"),
    (_foreign_target, "network_def _target_ 'os.system' is not a class of monai.networks.nets"),
    (_no_inferer, "--set inference.mode=VALUE"),
    (_classifier, "not a segmentation bundle (its output format is 'classification')"),
    (_traversal_zip, "zip entry '../../outside.txt' points outside the bundle"),
], ids=["no-metadata", "foreign-target", "no-inferer", "classifier", "traversal-zip"])
def test_bad_bundle_is_refused_with_one_line_and_nothing_installed(made, tmp_path, breakage, message):
    bundle = breakage(shutil.copytree(made["bundle"], tmp_path / "colin27_brain_unet"), tmp_path)
    home = tmp_path / "home"
    result = medai(home, "models", "install", str(bundle))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("medai: error: ") and message in result.stderr, \
        result.stderr
    assert installed_entries(home) == []
    assert not list(tmp_path.rglob("outside.txt"))
    cache = home / "cache" / "bundles"
    assert not cache.exists() or not list(cache.iterdir())  # no extraction, not even a partial one


def test_missing_field_can_be_given_on_install(made, tmp_path):
    bundle = _no_inferer(shutil.copytree(made["bundle"], tmp_path / "colin27_brain_unet"), tmp_path)
    home = tmp_path / "home"
    result = medai(home, "models", "install", str(bundle), "--set", "inference.mode=sliding-window",
                   "--set", "inference.roi_size=[32,32,32]", "--set", "inference.blend_mode=gaussian")
    assert result.returncode == 0, result.stderr
    card = json.loads((home / "models" / "colin27_brain_unet" / "card.json").read_text())
    assert card["inference"] == {"mode": "sliding-window", "roi_size": [32, 32, 32], "blend_mode": "gaussian",
                                 "output": "softmax"}


def test_yaml_inference_config_is_read_when_pyyaml_is_installed(made, tmp_path):
    """configs/inference.yaml (the same config; JSON is YAML): the same card with PyYAML, else a line asking for it."""
    import importlib.util

    from medai.models import get_card

    bundle = shutil.copytree(made["bundle"], tmp_path / "colin27_brain_unet")
    (bundle / "configs" / "inference.json").rename(bundle / "configs" / "inference.yaml")
    if importlib.util.find_spec("yaml") is None:
        with pytest.raises(MedAIError, match=r"inference.yaml: reading a YAML bundle config needs PyYAML"):
            get_card(bundle)
    else:
        expected = get_card(made["bundle"]).data
        assert {k: v for k, v in get_card(bundle).data.items() if k != "source"} == \
            {k: v for k, v in expected.items() if k != "source"}


def test_network_argument_that_is_an_expression_is_asked_for(made, tmp_path):
    """A state-dict bundle whose network_def argument is a Python expression: MedAI evaluates none, it asks."""
    from medai.models import get_card
    from medai.models.bundle import card_from_bundle

    bundle = state_dict_variant(made["bundle"], tmp_path)
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    config["network_def"]["out_channels"] = "$len(['background', 'brain'])"
    config["network_def"]["in_channels"] = "@input_channels"  # a reference to a literal is followed
    config["input_channels"] = 1
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    with pytest.raises(MedAIError, match=r"network_def argument 'out_channels' as a literal .*"
                                         r"--set network.args.out_channels=VALUE"):
        get_card(bundle)
    card = card_from_bundle(bundle, {"network.args.out_channels": 2})
    assert card.data["network"]["args"]["in_channels"] == 1 and card.data["network"]["args"]["out_channels"] == 2
