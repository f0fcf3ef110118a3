"""Running an ONNX file with OpenVINO on the CPU.

Privacy: the OpenVINO runtime (``openvino.Core``: read_model, compile_model, inference) has no telemetry. Only its
model-conversion tools (``openvino.convert_model``, the ``ovc`` command, in ``openvino.tools.ovc``) report usage,
through the ``openvino_telemetry`` package, with consent assumed when no opt-out file exists. This module never
touches them: it reads the ONNX file directly with ``Core.read_model``, so ``openvino_telemetry`` is not even
imported (Testing/test_engines.py checks that, and that no socket is opened during inference).
"""

from __future__ import annotations

from pathlib import Path

from medai.errors import MedAIError

#: ``--precision`` -> OpenVINO inference precision hint; None keeps the device's default (bf16 or f16 on CPUs
#: with native support for it, f32 elsewhere).
PRECISION_HINTS = {"fp32": "f32", "reduced": None}


def reduced_precision_type() -> str:
    """What 'reduced' precision means on this CPU: the OpenVINO CPU plugin's default inference precision."""
    import openvino as ov

    return str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name())


class OpenVinoNetwork:
    """An ONNX model compiled by OpenVINO for the CPU, once per input shape (static shapes run fastest)."""

    def __init__(self, path: Path, threads: int, precision: str = "fp32") -> None:
        import openvino as ov

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
