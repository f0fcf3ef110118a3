"""Which network classes a card or bundle may name: only those of ``monai.networks.nets``.

A card's ``network`` (and a bundle's ``network_def``) is built by name; allowing nothing but MONAI's own network
classes means a model file can never make MedAI import or run code of its own choosing.
"""

from __future__ import annotations

from medai.errors import MedAIError


def monai_network_class(name: str):
    """The class ``monai.networks.nets.<name>``; MedAIError for any other name."""
    import torch
    import monai.networks.nets as nets

    cls = getattr(nets, name, None) if not name.startswith("_") else None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise MedAIError(f"'{name}' is not a network class of monai.networks.nets; only those can be built")
    return cls
