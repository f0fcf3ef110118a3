"""Running an ONNX file with OpenVINO on the CPU, with OpenVINO's usage telemetry off.

Privacy: ``import openvino`` imports its model converter (``openvino.tools.ovc``), which at import time starts
``openvino_telemetry`` and sends a "general_import" event (to Google Analytics, from a forked process), writing a
client id under ``~/intel`` first, unless the user opted out with Intel's ``opt_in_out --opt_out`` or the process
looks like a CI job (``CI=true``). :func:`import_openvino` imports it with ``CI=true`` set for the duration of the
import only: the telemetry object (a per-process singleton) is then created with consent declined, so nothing is
written or sent for the rest of the process, and neither the user's files nor the environment are changed.
Testing/test_engines.py checks this (no socket attempt, no ``~/intel`` file) against plain ``import openvino``.
ONNX files are read directly with ``Core.read_model``; the converter is never used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from medai.errors import MedAIError


def import_openvino():
    """The ``openvino`` module, imported with its telemetry declined (see the module docstring)."""
    if "openvino" in sys.modules:  # imported already (by medai, or too late to change by someone else)
        return sys.modules["openvino"]
    saved = os.environ.get("CI")
    os.environ["CI"] = "true"  # openvino_telemetry's own rule: no consent in CI jobs
    try:
        import openvino
    finally:
        if saved is None:
            del os.environ["CI"]
        else:
            os.environ["CI"] = saved
    return openvino


#: ``--precision`` -> OpenVINO inference precision hint; None keeps the device's default (bf16 or f16 on CPUs
#: with native support for it, f32 elsewhere).
PRECISION_HINTS = {"fp32": "f32", "reduced": None}


def reduced_precision_type() -> str:
    """What 'reduced' precision means on this CPU: the OpenVINO CPU plugin's default inference precision."""
    ov = import_openvino()
    return str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name())


class OpenVinoNetwork:
    """An ONNX model compiled by OpenVINO for the CPU, once per input shape (static shapes run fastest)."""

    def __init__(self, path: Path, threads: int, precision: str = "fp32") -> None:
        ov = import_openvino()
        if precision not in PRECISION_HINTS:
            raise MedAIError(f"unknown precision '{precision}'; use fp32 or reduced")
        self.core = ov.Core()
        try:
            self.model = self.core.read_model(str(path))
        except RuntimeError as error:
            raise MedAIError(f"not a model OpenVINO can read ({str(error).strip().splitlines()[0]})", path) from None
        self.config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        if PRECISION_HINTS[precision]:
            self.config["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[precision]
        self.precision = precision
        self.device = "cpu"
        self._compiled: dict[tuple[int, ...], object] = {}

    def compiled_for(self, shape: tuple[int, ...]):
        """The model compiled for inputs of ``shape`` (compiled on first use)."""
        if shape not in self._compiled:
            model = self.model.clone()
            model.reshape({model.inputs[0].any_name: list(shape)})
            self._compiled[shape] = self.core.compile_model(model, "CPU", self.config)
        return self._compiled[shape]

    def __call__(self, batch):
        import numpy as np
        import torch

        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        compiled = self.compiled_for(tuple(array.shape))
        out = compiled(array)[compiled.outputs[0]]
        return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))
