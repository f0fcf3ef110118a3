"""Running a MONAI network rebuilt from a model card's ``network`` and a state dict file.

Only classes of ``monai.networks.nets`` can be built, from the card's literal keyword arguments; the weights are
read with ``torch.load(weights_only=True)``, which accepts tensors and plain containers and refuses any pickled
object that would run code. The file's SHA256 is checked against the card before this module sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medai.errors import MedAIError
from medai.models.card import ModelCard
from medai.models.network_classes import monai_network_class

#: Keys under which training tools nest the network's weights in a checkpoint (MONAI/ignite, Lightning).
NESTED_KEYS = ("model", "state_dict", "network")


def load_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a state dict file (flat, or nested under one of :data:`NESTED_KEYS`), without unpickling code."""
    import pickle

    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message suggests weights_only=False; the useful part is the line naming the refused object
        refused = [line for line in str(error).splitlines() if "GLOBAL" in line] or ["it holds Python objects"]
        raise MedAIError(f"refused: the file holds pickled code, not only tensors ({refused[0].strip()})",
                         path) from None
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MedAIError(f"not a readable state dict file ({first})", path) from None
    if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        nested = [state[k] for k in NESTED_KEYS if isinstance(state.get(k), dict)]
        state = nested[0] if nested else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MedAIError(f"holds no state dict of tensors (flat or under one of {', '.join(NESTED_KEYS)})", path)
    return state


class StateDictNetwork:
    """``monai.networks.nets.<card.network.name>(**args)`` with the state dict at ``path``, in eval mode on ``device``.

    Call it with a (N, C, ...) float32 tensor; returns the float32 output tensor.
    """

    def __init__(self, path: Path, card: ModelCard, device: str = "cpu") -> None:
        spec = card.data.get("network")
        if not spec:
            raise MedAIError(f"model '{card.id}' has runtime pytorch-state-dict but its card names no network")
        cls = monai_network_class(spec["name"])
        try:
            network = cls(**spec.get("args", {}))
        except (TypeError, ValueError, AssertionError) as error:
            raise MedAIError(f"cannot build {spec['name']} from the arguments of model '{card.id}' ({error})") from None
        try:
            network.load_state_dict(load_state_dict(Path(path)), strict=True)
        except RuntimeError as error:
            raise MedAIError(f"the weights do not fit {spec['name']} as model '{card.id}' describes it "
                             f"({str(error).splitlines()[0]})", path) from None
        self.module = network.to(device).eval()
        self.device = device

    def __call__(self, batch):
        import torch

        with torch.inference_mode():
            return self.module(batch.to(self.device)).float()
