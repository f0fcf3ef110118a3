"""Intensity normalisation of a network's input (torch tensors), as the model card's ``intensity`` says.

A card's ``preprocessing.intensity`` is one normalisation, applied to each input channel on its own, or a list
of them, one per channel (:func:`normalize_channels`).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np


def quantile_bounds(array: np.ndarray, lower: float, upper: float) -> tuple[float, float]:
    """The ``lower`` and ``upper`` quantiles of ``array`` (linear interpolation, as torch.quantile)."""
    low, high = np.quantile(np.asarray(array, dtype=np.float32).ravel(), [lower, upper])
    return float(low), float(high)


def normalize(x, spec: dict[str, Any], bounds: Optional[tuple[float, float]] = None):
    """Normalise tensor ``x`` by ``spec`` (the card's ``preprocessing.intensity``).

    * ``quantile-zscore``: clip to [0, 1] between the quantile ``bounds``, then z-score, then
      ``scale * z + shift`` (deepbet's scheme).
    * ``zscore``: (x - mean) / std.
    * ``range``: map [a_min, a_max] linearly to [b_min, b_max], optionally clipped (CT windows).
    * ``none``: unchanged.
    """
    kind = spec.get("type", "none")
    if kind == "quantile-zscore":
        low, high = bounds if bounds is not None else quantile_bounds(x.cpu().numpy(), spec["lower"], spec["upper"])
        x = ((x - low) / max(high - low, 1e-12)).clamp(0, 1)
        x = (x - x.mean()) / x.std().clamp_min(1e-12)
        return spec.get("scale", 1.0) * x + spec.get("shift", 0.0)
    if kind == "zscore":
        return (x - x.mean()) / x.std().clamp_min(1e-12)
    if kind == "range":
        x = (x - spec["a_min"]) / (spec["a_max"] - spec["a_min"]) * (spec["b_max"] - spec["b_min"]) + spec["b_min"]
        return x.clamp(spec["b_min"], spec["b_max"]) if spec.get("clip", True) else x
    if kind == "none":
        return x
    raise ValueError(f"unknown intensity normalisation {kind!r}")


IntensitySpec = Union[dict[str, Any], Sequence[dict[str, Any]]]


def channel_specs(spec: IntensitySpec, channels: int) -> list[dict[str, Any]]:
    """The normalisation of each of ``channels`` input channels: ``spec`` for each, or the list's entries."""
    if isinstance(spec, dict):
        return [spec] * channels
    specs = list(spec)
    if len(specs) != channels:
        raise ValueError(f"{len(specs)} intensity normalisations for {channels} input channels")
    return specs


def normalize_channels(x, spec: IntensitySpec):
    """Normalise each channel of a (C, ...) tensor ``x`` on its own, by ``spec`` (see :func:`channel_specs`)."""
    import torch

    specs = channel_specs(spec, x.shape[0])
    if len(specs) == 1:
        return normalize(x, specs[0])
    return torch.cat([normalize(x[c:c + 1], s) for c, s in enumerate(specs)])
