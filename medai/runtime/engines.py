"""Inference engines: one card's network run by torch, ONNX Runtime or OpenVINO behind the same call.

Every engine gives a callable ``network(batch) -> output``: a (N, C, ...) float32 torch tensor in, a float32 torch
tensor out, so the pipeline's inference modes (MONAI's sliding window included) run unchanged on any engine.

* ``torch``: the card's own weights (TorchScript, or a MONAI network built from a state dict).
* ``onnx``: ONNX Runtime, CPU. ``openvino``: OpenVINO, CPU. Both read an ONNX file: the card's
  ``onnx_weights[role]`` (SHA256-checked like any weight), the card's ``weights`` when its runtime is ``onnx``, or
  else an export of the SHA256-checked torch weights, made on first use and kept in
  ``medai.home.cache_dir('onnx')/<source sha256>/torch-<version>/`` (with its own checksum, re-exported if it changed).

Rule for ``auto`` (measured; figures in benchmarks/README.md and recipes/brain_extraction_small/README.md): on a
CUDA device, torch (the other two run on the CPU only). On the CPU it depends on how often the network runs per
image, because OpenVINO and ONNX Runtime pay an import, a compilation and (without ``onnx_weights``) a one-time
export before their first window:

* ``sliding-window`` cards (many windows per image): the first installed of openvino, onnx, torch. A SegResNet
  sliding window on a 192x192x128 CT ran 1.35-1.64x faster on OpenVINO and 1.02-1.38x on ONNX Runtime than on
  torch float32 (benchmarks/results/engines_2026-11-24*.json);
* cards that run their network once or twice per image (``whole``, ``localise-crop-segment``, classifiers):
  torch, then openvino, onnx. The whole ``medai segment`` process for brain-extraction took 7.1 s on torch and
  10.6 s on OpenVINO in the same run;
* a card whose runtime is ``onnx`` has no torch network: onnx, then openvino.

Rule for precision: ``fp32`` (the default) everywhere; its outputs agree with torch to 1e-4 (max abs).
``reduced`` is used only when asked for: bfloat16 autocast on torch, the CPU's own default inference precision
on OpenVINO (bf16/f16 where the CPU has native support, else f32); ONNX Runtime has no reduced CPU mode. ``auto``
never picks reduced precision by itself: reduced precision is acceptable only where label maps keep >= 99.8 %
voxel agreement with fp32, which depends on the model and the CPU and cannot be known for every card in advance
(on the benchmark CPU, without native bf16, OpenVINO's default precision is f32 anyway and torch's emulated
bfloat16 was slower than float32).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Callable, Optional

from medai.errors import MedAIError
from medai.models.card import ModelCard

ENGINES = ("torch", "onnx", "openvino")
PRECISIONS = ("fp32", "reduced")
#: Fastest first on the CPU, per kind of card (see the module docstring).
AUTO_ORDER_CPU = {"many-windows": ("openvino", "onnx", "torch"), "one-pass": ("torch", "openvino", "onnx"),
                  "onnx-only": ("onnx", "openvino")}
#: The Python package each engine needs.
ENGINE_PACKAGES = {"torch": "torch", "onnx": "onnxruntime", "openvino": "openvino"}

Network = Callable[["torch.Tensor"], "torch.Tensor"]


def available_engines() -> tuple[str, ...]:
    """The engines whose package is installed, in :data:`ENGINES` order (nothing is imported)."""
    return tuple(e for e in ENGINES if importlib.util.find_spec(ENGINE_PACKAGES[e]) is not None)


def resolve_engine(name: str, device: str, runtime: str = "torchscript", mode: Optional[str] = None) -> str:
    """The engine to run on ``device`` ('cpu' or 'cuda'): ``name`` itself after checks, or the choice of 'auto'.

    ``runtime`` is the card's runtime (a card with ONNX weights only cannot run on torch); ``mode`` its inference
    mode, which decides 'auto' on the CPU.
    """
    if name != "auto" and name not in ENGINES:
        raise MedAIError(f"unknown engine '{name}'; use auto, {', '.join(ENGINES)}")
    installed = available_engines()
    if runtime == "onnx":
        installed = tuple(e for e in installed if e != "torch")
    if name == "auto":
        if device == "cuda" and "torch" in installed:
            return "torch"
        kind = "onnx-only" if runtime == "onnx" else "many-windows" if mode == "sliding-window" else "one-pass"
        choices = [e for e in AUTO_ORDER_CPU[kind] if e in installed]
        if not choices:
            raise MedAIError("no engine for an ONNX model is installed; pip install onnxruntime (or openvino)")
        return choices[0]
    if name == "torch" and runtime == "onnx":
        raise MedAIError("this model has ONNX weights only; use --engine onnx, openvino or auto")
    if name not in installed:
        raise MedAIError(f"engine '{name}' needs the Python package '{ENGINE_PACKAGES[name]}'; "
                         f"pip install {ENGINE_PACKAGES[name]}")
    if name != "torch" and device == "cuda":
        raise MedAIError(f"engine '{name}' runs on the CPU only; use --device cpu or --engine torch")
    return name


def engine_and_device(engine: str, device_request: str, runtime: str = "torchscript",
                      mode: Optional[str] = None) -> tuple[str, str]:
    """Resolve the pair: an explicit CPU engine with device 'auto' runs on the CPU instead of failing."""
    from medai.runtime.device import resolve_device

    if engine in ("onnx", "openvino") and device_request == "auto":
        device_request = "cpu"
    device = resolve_device(device_request)
    return resolve_engine(engine, device, runtime, mode), device


def example_shape(card: ModelCard, role: str) -> tuple[int, ...]:
    """A (1, C, ...) input shape for tracing ``role`` of ``card``: the size it runs at, when the card says, halved
    while above 128 (the export has dynamic spatial axes; a 256^3 trace only costs time and memory)."""
    spec = card.inference
    channels = int(card.data.get("network", {}).get("args", {}).get("in_channels", 1))
    size = spec.get("localiser_size") if role == "localiser" else None
    size = list(size or spec.get("input_size") or spec.get("roi_size") or [64, 64, 64])
    while max(size) > 128 and all(s % 2 == 0 for s in size):
        size = [s // 2 for s in size]
    return (1, channels, *size)


def _verified_onnx_weight(card: ModelCard, role: str) -> Optional[Path]:
    """The card's own ONNX file for ``role`` after its SHA256 check, or None if the card has none."""
    from medai.models.card import ModelCard as Card
    from medai.models.weights import verified_weight

    if card.data.get("runtime") == "onnx":
        return verified_weight(card, role)
    onnx_weights = card.data.get("onnx_weights", {})
    if role not in onnx_weights:
        return None
    # the same locate + SHA256 check as the torch weights, on a view of the card whose weights are the ONNX ones
    return verified_weight(Card(data={**card.data, "weights": onnx_weights}, folder=card.folder), role)


def torch_network(card: ModelCard, role: str, source: Path, device: str):
    """The torch engine's network for ``role`` from its verified weight file ``source``."""
    runtime = card.data.get("runtime", "torchscript")
    if runtime == "pytorch-state-dict":
        from medai.runtime.state_dict import StateDictNetwork

        return StateDictNetwork(source, card, device)
    from medai.runtime.torchscript import TorchScriptNetwork

    return TorchScriptNetwork(source, device)


def exported_onnx(card: ModelCard, role: str) -> Path:
    """The ONNX export of the card's verified torch weights for ``role``, from the cache or made now (atomically)."""
    import torch

    from medai.home import cache_dir
    from medai.models.weights import sha256_of, verified_weight
    from medai.runtime.onnx_export import export_onnx

    source = verified_weight(card, role)
    key = card.weights[role]["sha256"]
    if card.data.get("runtime") == "pytorch-state-dict":
        # the same weights in another architecture would be another network
        key += "-" + hashlib.sha256(json.dumps(card.data.get("network"), sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir("onnx") / key / f"torch-{torch.__version__}"
    path, checksum = folder / f"{role}.onnx", folder / f"{role}.onnx.sha256"
    if path.is_file() and checksum.is_file() and checksum.read_text().strip() == sha256_of(path):
        return path
    folder.mkdir(parents=True, exist_ok=True)
    network = torch_network(card, role, source, "cpu")
    export_onnx(network.module, path, example_shape(card, role))
    from medai.io.atomic import write_atomically

    write_atomically(checksum, lambda target: target.write_text(sha256_of(path) + "\n"))
    return path


def onnx_file(card: ModelCard, role: str) -> Path:
    """The ONNX file the onnx and openvino engines run for ``role``: the card's own, else a cached export."""
    return _verified_onnx_weight(card, role) or exported_onnx(card, role)


class _Autocast:
    """Runs a torch network under bfloat16 autocast on the CPU; returns float32."""

    def __init__(self, network) -> None:
        self.network = network
        self.device = network.device

    def __call__(self, batch):
        import torch

        with torch.autocast(self.device, dtype=torch.bfloat16):
            return self.network(batch).float()


def load_network(card: ModelCard, role: str, engine: str = "auto", device: str = "cpu",
                 precision: str = "fp32") -> Network:
    """Network ``role`` of ``card`` on ``engine`` ('auto' resolves per :func:`resolve_engine`) and ``device``.

    Weights are SHA256-checked before loading. ``precision``: 'fp32', or 'reduced' (see the module docstring).
    """
    from medai.models.weights import verified_weight
    from medai.runtime.device import configure_threads

    if precision not in PRECISIONS:
        raise MedAIError(f"unknown precision '{precision}'; use fp32 or reduced")
    runtime = card.data.get("runtime", "torchscript")
    engine = resolve_engine(engine, device, runtime, card.inference.get("mode"))
    threads = configure_threads()
    if engine == "torch":
        network = torch_network(card, role, verified_weight(card, role), device)
        return _Autocast(network) if precision == "reduced" else network
    path = onnx_file(card, role)
    if engine == "onnx":
        if precision == "reduced":
            raise MedAIError("ONNX Runtime has no reduced-precision CPU mode; use --precision fp32 or another engine")
        from medai.runtime.onnx_runtime import OnnxRuntimeNetwork

        return OnnxRuntimeNetwork(path, threads)
    from medai.runtime.openvino_runtime import OpenVinoNetwork

    return OpenVinoNetwork(path, threads, precision)
