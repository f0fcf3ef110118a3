"""Running an ONNX file with ONNX Runtime on the CPU."""

from __future__ import annotations

from pathlib import Path

from medai.errors import MedAIError


def session_options(threads: int):
    """Options for one inference at a time: every core inside an operator, operators in sequence, full graph
    optimisation, and no spinning threads left burning the cores between calls."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


class OnnxRuntimeNetwork:
    """An ONNX Runtime CPU session; call it with a (N, C, ...) float32 torch tensor, get a float32 torch tensor."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        ort.disable_telemetry_events()  # a no-op outside Windows, where ORT would log usage events to ETW
        try:
            self.session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as error:  # ORT raises its own Fail/InvalidGraph/... types
            raise MedAIError(f"not a loadable ONNX model ({str(error).splitlines()[0]})", path) from None
        self.input_name = self.session.get_inputs()[0].name
        self.device = "cpu"

    def __call__(self, batch):
        import numpy as np
        import torch

        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0].astype(np.float32, copy=False))
