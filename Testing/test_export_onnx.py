"""ONNX export: ``medai export-onnx`` on the brain-extraction model and on a TorchScript file, ``export_onnx`` on
plain MONAI networks (SegResNet, UNet, DenseNet121), each compared with torch on real images; bad input is one line.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import PYRADIOMICS_DATA
from medai import MedAIError
from medai.models import get_card
from medai.runtime.onnx_export import export_onnx
from medai.runtime.onnx_runtime import OnnxRuntimeNetwork
from test_engines import localiser_input


def medai(*args, home=None) -> subprocess.CompletedProcess:
    """The real command in a child process (for exports, which load torch's exporter state)."""
    import os

    env = dict(os.environ, **({"MEDAI_HOME": str(home)} if home else {}))
    return subprocess.run([sys.executable, "-m", "medai.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


def medai_here(capsys, *args) -> tuple[int, str, str]:
    """``medai`` run in this process (quicker for the error cases): exit code, stdout, stderr."""
    from medai.cli.main import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ct_block(shape_xyz=(64, 64, 32)):
    """A real chest CT block (pyradiomics lung1) scaled to about [0, 1], as a (1, 1, X, Y, Z) tensor."""
    import torch

    from medai.io import read_volume

    volume = read_volume(PYRADIOMICS_DATA / "lung1_image.nrrd")
    x, y, z = shape_xyz
    block = volume.array[8:8 + z, 220:220 + y, 170:170 + x].transpose(2, 1, 0)
    return torch.from_numpy(np.clip((block.astype(np.float32) + 1000) / 2000, 0, 1))[None, None].contiguous()


def test_cli_exports_the_brain_localiser_with_parity_on_colin27(colin27, tmp_path):
    from medai.runtime.engines import load_network

    out = tmp_path / "localiser.onnx"
    run = medai("export-onnx", "brain-extraction", "--role", "localiser", "-o", out, home=tmp_path / "home")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"medai: wrote {out} from model 'brain-extraction', network 'localiser'")
    batch = localiser_input(colin27)
    reference = load_network(get_card("brain-extraction"), "localiser", "torch")(batch)
    assert float((OnnxRuntimeNetwork(out, 2)(batch) - reference).abs().max()) <= 1e-4
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".onnx"] == ["localiser.onnx"]  # nothing left over


def test_cli_exports_a_torchscript_file(tmp_path):
    import torch
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    network = UNet(3, 1, 2, (8, 16, 32), (2, 2), num_res_units=1).eval()
    torch.jit.script(network).save(str(tmp_path / "unet.ts"))
    run = medai("export-onnx", tmp_path / "unet.ts", "--shape", "1,1,64,64,32", "-o", tmp_path / "unet.onnx")
    assert run.returncode == 0, run.stderr
    block = ct_block((96, 64, 48))  # another size than the trace: spatial axes are dynamic
    with torch.no_grad():
        reference = network(block)
    assert float((OnnxRuntimeNetwork(tmp_path / "unet.onnx", 2)(block) - reference).abs().max()) <= 1e-4


@pytest.mark.parametrize("name", ["SegResNet", "UNet"])
def test_export_monai_segmentation_networks(name, tmp_path):
    import torch
    from monai.networks import nets

    torch.manual_seed(0)
    network = (nets.SegResNet(spatial_dims=3, init_filters=8, in_channels=1, out_channels=3) if name == "SegResNet"
               else nets.UNet(3, 1, 3, (8, 16, 32), (2, 2), num_res_units=2)).eval()
    path = export_onnx(network, tmp_path / f"{name}.onnx", (1, 1, 32, 32, 32))
    assert path == tmp_path / f"{name}.onnx"
    for shape in ((64, 64, 32), (48, 80, 32)):
        block = ct_block(shape)
        with torch.no_grad():
            reference = network(block)
        assert float((OnnxRuntimeNetwork(path, 2)(block) - reference).abs().max()) <= 1e-4, shape


def test_export_densenet121_classifier_on_a_real_slice(tmp_path):
    import torch
    from monai.networks.nets import DenseNet121

    torch.manual_seed(0)
    network = DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval()
    path = export_onnx(network, tmp_path / "densenet.onnx", (1, 1, 128, 128), dynamic_spatial=False)
    image = ct_block((128, 128, 1))[..., 0]
    with torch.no_grad():
        reference = network(image)
    assert reference.shape == (1, 2)
    assert float((OnnxRuntimeNetwork(path, 2)(image) - reference).abs().max()) <= 1e-4


def test_export_errors_are_one_line_and_leave_no_file(tmp_path, capsys):
    out = tmp_path / "x.onnx"
    cases = [
        (["brain-extraction"], "model 'brain-extraction' has several networks (localiser, segmenter); "
                               "choose one with --role"),
        (["brain-extraction", "--role", "skull"], "model 'brain-extraction' has no network 'skull'; "
                                                  "it has localiser, segmenter"),
        ([tmp_path / "missing.ts"], f"{tmp_path / 'missing.ts'}: no such TorchScript file"),
        (["no-such-model"], "no-such-model: unknown model; known models:"),
        (["brain-extraction", "--role", "localiser", "--shape", "1,1,a"], "--shape '1,1,a' is not a comma-separated"),
    ]
    (tmp_path / "junk.ts").write_bytes(b"not a model")
    cases.append(([tmp_path / "junk.ts"], f"{tmp_path / 'junk.ts'}: not a loadable TorchScript model"))
    for args, message in cases:
        code, _, err = medai_here(capsys, "export-onnx", *args, "-o", out)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith(f"medai: error: {message}"), err
        assert not out.exists()
    out.write_bytes(b"keep me")
    code, _, err = medai_here(capsys, "export-onnx", "brain-extraction", "--role", "localiser", "-o", out)
    assert code == 1 and "already exists; use --overwrite" in err and out.read_bytes() == b"keep me"
    code, _, err = medai_here(capsys, "export-onnx", "brain-extraction", "--role", "localiser", "-o", tmp_path / "x.pt")
    assert code == 1 and "the output must be an .onnx file" in err
    import torch

    with pytest.raises(MedAIError, match=r"example shape \[1, 64\] is not a \(N, C, spatial...\) shape"):
        export_onnx(torch.nn.Conv3d(1, 1, 3), tmp_path / "y.onnx", (1, 64))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.ts", "x.onnx"]
