"""Inference engines (torch, ONNX Runtime, OpenVINO) on real images: float32 parity with torch, the same label
maps from ``medai segment --engine``, a trained MONAI network through the sliding window, ONNX weights checked
like any weight, the export cache, and no network socket while OpenVINO runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ITK_T1, PYRADIOMICS_DATA
from medai import MedAIError
from medai.metrics import dice
from medai.models import get_card
from medai.models.card import card_from_dict
from medai.models.weights import sha256_of
from medai.runtime.engines import ENGINES, available_engines, load_network, resolve_engine

FAST_ENGINES = ("onnx", "openvino")


@pytest.fixture(scope="module")
def medai_home(tmp_path_factory):
    """A fresh MEDAI_HOME for this module: ONNX exports land in its cache, not the user's."""
    home = tmp_path_factory.mktemp("medai_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDAI_HOME", str(home))
        yield home


def localiser_input(volume):
    """The brain-extraction localiser's (1, 1, 128, 128, 128) input for ``volume``, prepared as the pipeline does."""
    import torch

    from medai.pipeline.inference import resize_tensor
    from medai.pipeline.intensity import normalize, quantile_bounds
    from medai.pipeline.orientation import canonical_reorientation

    card = get_card("brain-extraction")
    image = canonical_reorientation(volume, "RAS").apply(volume.array.astype(np.float32).transpose(2, 1, 0))
    small = resize_tensor(torch.from_numpy(np.ascontiguousarray(image))[None], card.inference["localiser_size"],
                    card.inference["resize_mode"])
    intensity = card.preprocessing["intensity"]
    return normalize(small, intensity, quantile_bounds(small.numpy(), intensity["lower"], intensity["upper"]))[None]


def test_engines_installed_and_the_auto_rule():
    assert available_engines() == ENGINES  # all three are dependencies of the project
    assert resolve_engine("auto", "cpu", mode="sliding-window") == "openvino"
    assert resolve_engine("auto", "cpu", mode="localise-crop-segment") == "torch"
    assert resolve_engine("auto", "cpu", mode="whole") == "torch"
    assert resolve_engine("auto", "cuda", mode="sliding-window") == "torch"
    assert resolve_engine("auto", "cpu", runtime="onnx") == "onnx"
    for engine in ENGINES:
        assert resolve_engine(engine, "cpu") == engine
    with pytest.raises(MedAIError, match="runs on the CPU only"):
        resolve_engine("onnx", "cuda")
    with pytest.raises(MedAIError, match="ONNX weights only"):
        resolve_engine("torch", "cpu", runtime="onnx")
    with pytest.raises(MedAIError, match="unknown engine 'tensorrt'; use auto, torch, onnx, openvino"):
        resolve_engine("tensorrt", "cpu")


def test_localiser_float32_parity_on_colin27(colin27, medai_home):
    import torch

    card = get_card("brain-extraction")
    batch = localiser_input(colin27)
    reference = load_network(card, "localiser", "torch")(batch)
    assert reference.shape == (1, 2, 128, 128, 128)
    for engine in FAST_ENGINES:
        out = load_network(card, "localiser", engine)(batch)
        assert out.dtype == torch.float32 and out.shape == reference.shape
        assert float((out - reference).abs().max()) <= 1e-4, engine
    # the export was cached under the weight's SHA256 and torch version, with its own checksum
    cached = medai_home / "cache" / "onnx" / card.weights["localiser"]["sha256"] / f"torch-{torch.__version__}"
    assert (cached / "localiser.onnx.sha256").read_text().strip() == sha256_of(cached / "localiser.onnx")


def test_a_changed_cached_export_is_made_again(colin27, medai_home):
    import torch

    card = get_card("brain-extraction")
    load_network(card, "localiser", "onnx")
    cached = (medai_home / "cache" / "onnx" / card.weights["localiser"]["sha256"] / f"torch-{torch.__version__}"
              / "localiser.onnx")
    cached.write_bytes(cached.read_bytes()[:1000])  # cut short after it was written
    batch = localiser_input(colin27)
    out = load_network(card, "localiser", "onnx")(batch)
    assert (cached.with_name("localiser.onnx.sha256").read_text().strip() == sha256_of(cached)
            and cached.stat().st_size > 1_000_000)
    assert float((out - load_network(card, "localiser", "torch")(batch)).abs().max()) <= 1e-4


def test_card_onnx_weights_are_sha256_checked(colin27, medai_home, tmp_path):
    card = get_card("brain-extraction")
    exported = next((medai_home / "cache" / "onnx").glob(f"{card.weights['localiser']['sha256']}/*/localiser.onnx"))
    (tmp_path / "localiser.onnx").write_bytes(exported.read_bytes())
    data = dict(card.data, id="brain-onnx", onnx_weights={
        "localiser": {"path": "localiser.onnx", "sha256": sha256_of(exported)}})
    own = card_from_dict(data, folder=tmp_path)
    batch = localiser_input(colin27)
    reference = load_network(card, "localiser", "torch")(batch)
    for engine in FAST_ENGINES:
        assert float((load_network(own, "localiser", engine)(batch) - reference).abs().max()) <= 1e-4

    (tmp_path / "localiser.onnx").write_bytes(exported.read_bytes()[:-100])
    for engine in FAST_ENGINES:
        with pytest.raises(MedAIError, match="failed its SHA256 check") as error:
            load_network(own, "localiser", engine)
        assert error.value.path == str(tmp_path / "localiser.onnx") and "\n" not in str(error.value)

    # a card whose runtime is onnx: its weights are the ONNX files; torch cannot run it
    (tmp_path / "localiser.onnx").write_bytes(exported.read_bytes())
    onnx_only = card_from_dict(dict(card.data, id="brain-onnx-only", runtime="onnx", weights={
        "localiser": {"path": "localiser.onnx", "sha256": sha256_of(exported)}}), folder=tmp_path)
    assert float((load_network(onnx_only, "localiser", "auto")(batch) - reference).abs().max()) <= 1e-4
    with pytest.raises(MedAIError, match="ONNX weights only"):
        load_network(onnx_only, "localiser", "torch")


def test_segment_cli_engines_give_the_torch_label_map_on_itk_t1(itk_t1_brain_mask, medai_home, tmp_path):
    from medai.io import read_volume

    maps = {}
    for engine in ("torch", *FAST_ENGINES):
        out = tmp_path / f"{engine}.nii.gz"
        run = subprocess.run([sys.executable, "-m", "medai.cli.main", "segment", ITK_T1, "-o", out, "--engine", engine,
                              "--device", "auto", "--progress", "none"], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        maps[engine] = read_volume(out).array
    for engine in FAST_ENGINES:
        assert np.mean(maps[engine] == maps["torch"]) >= 0.999, engine
        assert dice(maps[engine] > 0, itk_t1_brain_mask.array > 0) >= 0.95, engine


def test_unknown_engine_and_precision_are_one_line_errors(tmp_path):
    run = subprocess.run([sys.executable, "-m", "medai.cli.main", "segment", ITK_T1, "-o", tmp_path / "x.nii.gz",
                          "--engine", "tensorrt"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "invalid choice: 'tensorrt'" in run.stderr
    run = subprocess.run([sys.executable, "-m", "medai.cli.main", "segment", ITK_T1, "-o", tmp_path / "x.nii.gz",
                          "--engine", "onnx", "--precision", "reduced", "--progress", "none"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and not (tmp_path / "x.nii.gz").exists()
    assert run.stderr.strip().splitlines() == [
        "medai: error: ONNX Runtime has no reduced-precision CPU mode; use --precision fp32 or another engine"]


# --- a trained MONAI network through the sliding window -------------------------------------------------------------

def lung_ct_crop() -> np.ndarray:
    """A real chest CT block (pyradiomics lung1, HU), canonical (X, Y, Z) = 96 x 96 x 48."""
    from medai.io import read_volume

    volume = read_volume(PYRADIOMICS_DATA / "lung1_image.nrrd")
    return np.ascontiguousarray(volume.array[:, 200:296, 150:246].transpose(2, 1, 0), dtype=np.float32)


def train_unet(image: np.ndarray, folder: Path, steps: int = 40):
    """A MONAI UNet trained (fixed seed) for ``steps`` on 32^3 patches of ``image`` to tell air/lung, soft tissue
    and bone (HU thresholds -400 and 300); returns its card (runtime pytorch-state-dict, sliding window)."""
    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [8, 16, 32], "strides": [2, 2],
            "num_res_units": 1}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # backward passes of a tiny net: one thread is quicker than two that compete
    try:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        network = UNet(**args)
        optimiser = torch.optim.Adam(network.parameters(), 1e-2)
        loss = DiceCELoss(to_onehot_y=True, softmax=True)
        x = np.clip((image + 1000) / 2000, 0, 1)
        target = np.digitize(image, [-400, 300])
        for _ in range(steps):
            corners = [rng.integers(0, np.array(image.shape) - 32 + 1) for _ in range(2)]
            patch = lambda a: np.stack([a[None, i:i + 32, j:j + 32, k:k + 32] for i, j, k in corners])  # noqa: E731
            value = loss(network(torch.from_numpy(patch(x)).float()), torch.from_numpy(patch(target)))
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    torch.save(network.state_dict(), folder / "unet.pt")
    return card_from_dict({
        "schema_version": 1, "id": "lung-ct-unet", "name": "CT tissue classes (test)", "version": "0.1",
        "task": "segmentation", "input": {"modality": "CT", "dimensions": 3},
        "labels": [{"value": 1, "name": "Soft tissue", "color": "#c08080"}, {"value": 2, "name": "Bone", "color": "#f0f0d0"}],
        "runtime": "pytorch-state-dict", "network": {"name": "UNet", "args": args},
        "weights": {"segmenter": {"path": "unet.pt", "sha256": sha256_of(folder / "unet.pt")}},
        "preprocessing": {"intensity": {"type": "range", "a_min": -1000, "a_max": 1000, "b_min": 0, "b_max": 1}},
        "inference": {"mode": "sliding-window", "roi_size": [48, 48, 32], "overlap": 0.25, "output": "logits"},
        "license": "MIT", "source": "trained in Testing/test_engines.py"}, folder=folder)


def test_trained_unet_sliding_window_parity_on_lung_ct(medai_home, tmp_path):
    from medai.pipeline.inference import sliding_window

    image = lung_ct_crop()
    card = train_unet(image, tmp_path)
    intensity = card.preprocessing["intensity"]
    logits = {engine: sliding_window(image, {"segmenter": load_network(card, "segmenter", engine)}, card.inference,
                                     intensity) for engine in ENGINES}
    labels = logits["torch"].argmax(0)
    # trained, not random: it tells the three HU classes apart on most of the block
    assert np.mean(labels == np.digitize(image, [-400, 300])) >= 0.8
    for engine in FAST_ENGINES:
        assert logits[engine].shape == (3, 96, 96, 48)
        assert float(np.abs(logits[engine] - logits["torch"]).max()) <= 1e-4, engine
        assert np.mean(logits[engine].argmax(0) == labels) >= 0.999, engine


# --- privacy ------------------------------------------------------------------------------------------------------

NO_NETWORK = """
import json, socket, sys
def refuse(name):
    def blocked(*args, **kwargs):
        with open(ATTEMPTS, "a") as log:  # a file: forked children (OpenVINO's sender is one) report too
            log.write(name + "\\n")
        raise OSError("network access: " + name)
    return blocked
for name in ("connect", "connect_ex", "sendto", "sendmsg"):
    setattr(socket.socket, name, refuse("socket." + name))
socket.create_connection = refuse("create_connection")
socket.getaddrinfo = refuse("getaddrinfo")
"""

SEGMENT_WITH_OPENVINO = """
from medai.io import read_volume
from medai.pipeline import Segmenter
segmenter = Segmenter("brain-extraction", device="cpu", engine="openvino")
result = segmenter(read_volume(IMAGE))
assert type(segmenter.load()["segmenter"]).__name__ == "OpenVinoNetwork"
voxels = int((result.label_map.array > 0).sum())
"""

FLUSH_TELEMETRY = """
import openvino_telemetry
telemetry = openvino_telemetry.Telemetry()  # the process's one instance, made when openvino was imported
telemetry.sender.executor.shutdown(wait=True)  # wait for anything it queued
print(json.dumps({"consent": telemetry.consent, "voxels": globals().get("voxels")}))
"""


def run_isolated(code: str, home: Path, medai_home: Path) -> tuple[dict, list[str]]:
    """Run ``code`` in a fresh interpreter with sockets refused, HOME=``home`` and no CI markers in the environment;
    returns its JSON report and the network attempts it (or any child process) made."""
    attempts = home / "attempts.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env.update(HOME=str(home), MEDAI_HOME=str(medai_home))
    prelude = f"ATTEMPTS = {str(attempts)!r}\nIMAGE = {str(ITK_T1)!r}\n"
    run = subprocess.run([sys.executable, "-c", prelude + NO_NETWORK + code + FLUSH_TELEMETRY],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1]), (attempts.read_text().split() if attempts.exists() else [])


def test_openvino_inference_sends_no_telemetry_and_opens_no_socket(medai_home, tmp_path):
    """Segmenting with OpenVINO declines OpenVINO's telemetry: no socket attempt, nothing written under ~/intel.
    Control: a plain ``import openvino`` in the same conditions does try to send (and writes a client id)."""
    home = tmp_path / "medai-user"
    home.mkdir()
    report, attempts = run_isolated(SEGMENT_WITH_OPENVINO, home, medai_home)
    assert attempts == [] and report["consent"] is False
    assert not (home / "intel").exists()
    assert report["voxels"] > 100_000  # it did segment

    control = tmp_path / "plain-user"
    control.mkdir()
    report, attempts = run_isolated("import openvino\n", control, medai_home)
    assert report["consent"] is True and attempts  # e.g. getaddrinfo from the forked sender
    assert (control / "intel" / "openvino_ga_cid").is_file()
