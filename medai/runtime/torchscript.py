"""Running a TorchScript network on numpy arrays.

TorchScript archives hold code and tensors, not arbitrary pickled Python objects, so loading one does not
run pickled code; the file's SHA256 is checked against its card before this module sees it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medai.errors import MedAIError


class TorchScriptNetwork:
    """A TorchScript module in eval mode on ``device``; call it with a (N, C, X, Y, Z) float32 tensor."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        import torch

        try:
            module = torch.jit.load(str(path), map_location=device)
        except (RuntimeError, ValueError) as error:
            raise MedAIError(f"not a loadable TorchScript model ({str(error).splitlines()[0]})", path) from None
        module.eval()
        # Freezing inlines the weights as constants: measurably faster on CPU and bit-identical output.
        self.module = torch.jit.freeze(module)
        self.device = device

    def __call__(self, batch):
        import torch

        # The profiling executor re-optimises a graph during its first calls, which costs more than it
        # saves when a process segments one or a few images; plain execution of the frozen graph is faster.
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            return self.module(batch.to(self.device))

    def predict(self, array: np.ndarray) -> np.ndarray:
        """Run on one (C, X, Y, Z) numpy array; returns the (C', X, Y, Z) output as float32 numpy."""
        import torch

        out = self(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None])
        return out[0].float().cpu().numpy()
