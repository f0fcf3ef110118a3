"""``medai export-onnx MODEL -o OUT.onnx``: a model's network as one ONNX file, checked against torch."""

from __future__ import annotations

import argparse
from pathlib import Path

from medai.errors import MedAIError

#: Largest accepted |ONNX - torch| on the random check input, relative to the output's scale (max(1, max |torch|)).
#: Noise is far from what a network was trained on and amplifies float32 rounding: on it, torch itself is 1.6e-4
#: from a float64 run of deepbet's localiser (ONNX: 7.9e-5), while on a real T1 both are within 1.5e-5. A wrong
#: export differs by 1e-2 or more.
PARITY_TOLERANCE = 1e-3


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export-onnx", help="export a model's network to ONNX",
        description="Export a TorchScript file, or one network of a model (card id, card, package or MONAI bundle), "
                    "to ONNX; the export is run on a random input and compared with torch before it is kept.")
    parser.add_argument("model", metavar="MODEL", help="model id, card/package/bundle path, or a TorchScript .ts/.pt file")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.onnx", help="ONNX file to write")
    parser.add_argument("--role", help="which network of a model with several (for example localiser or segmenter)")
    parser.add_argument("--shape", help="input shape N,C,X,Y,Z to trace with (default: the model's input size; "
                                        "1,1,96,96,96 for a TorchScript file)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: 18)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT.onnx if it exists")
    parser.set_defaults(func=run)
    return parser


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise MedAIError(f"--shape '{text}' is not a comma-separated list of integers") from None
    if len(shape) < 3 or min(shape) < 1:
        raise MedAIError(f"--shape '{text}' is not an N,C,spatial... shape of positive sizes")
    return shape


def _torch_source(args: argparse.Namespace):
    """(torch network, example shape, description) for MODEL."""
    from medai.runtime.torchscript import TorchScriptNetwork

    path = Path(args.model)
    if path.suffix.lower() in (".ts", ".pt", ".pth") and path.is_file():
        return TorchScriptNetwork(path, "cpu"), _shape(args.shape or "1,1,96,96,96"), path.name
    if path.suffix.lower() in (".ts", ".pt", ".pth"):
        raise MedAIError("no such TorchScript file", path)

    from medai.models import get_card
    from medai.models.weights import verified_weight
    from medai.runtime.engines import example_shape, torch_network

    card = get_card(args.model)
    if card.data.get("runtime") == "onnx":
        raise MedAIError(f"model '{card.id}' is already ONNX; its weights are the ONNX files")
    roles = list(card.weights)
    role = args.role or (roles[0] if len(roles) == 1 else None)
    if role is None:
        raise MedAIError(f"model '{card.id}' has several networks ({', '.join(roles)}); choose one with --role")
    if role not in roles:
        raise MedAIError(f"model '{card.id}' has no network '{role}'; it has {', '.join(roles)}")
    network = torch_network(card, role, verified_weight(card, role), "cpu")
    shape = _shape(args.shape) if args.shape else example_shape(card, role)
    return network, shape, f"model '{card.id}', network '{role}'"


def run(args: argparse.Namespace) -> int:
    import torch

    from medai.io.atomic import write_atomically
    from medai.runtime.device import configure_threads
    from medai.runtime.onnx_export import export_onnx
    from medai.runtime.onnx_runtime import OnnxRuntimeNetwork

    out: Path = args.output
    if out.suffix.lower() != ".onnx":
        raise MedAIError("the output must be an .onnx file", out)
    if out.exists() and not args.overwrite:
        raise MedAIError("already exists; use --overwrite to replace it", out)
    network, shape, what = _torch_source(args)
    threads = configure_threads()
    check = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    reference = network(check).float()
    found = {}

    def write_checked(target: Path) -> None:
        export_onnx(network.module, target, shape, opset=args.opset)
        exported = OnnxRuntimeNetwork(target, threads)(check)
        found["diff"] = float((exported - reference).abs().max())
        scale = max(1.0, float(reference.abs().max()))
        if not found["diff"] <= PARITY_TOLERANCE * scale:
            raise MedAIError(f"the ONNX export differs from torch by {found['diff']:.3g} (max abs) on a random input; "
                             "not written", out)

    write_atomically(out, write_checked)
    print(f"medai: wrote {out} from {what}; max |ONNX - torch| = {found['diff']:.2g} on a random "
          f"{'x'.join(map(str, shape))} input")
    return 0
