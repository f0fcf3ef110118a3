"""Running a card's network(s) on a canonical image; returns class scores (classes, X, Y, Z).

The image is (channels, X, Y, Z), or (X, Y, Z) for one channel; each channel is normalised on its own.

Three modes, chosen by the card's ``inference.mode``:

* ``whole``: resize the image to ``input_size``, run once, resize the scores back;
* ``localise-crop-segment``: a small localiser on a ``localiser_size`` copy finds the object's bounding
  box; the box (plus ``crop_margin``) is resized to ``input_size`` and segmented; scores outside it are background;
* ``sliding-window``: MONAI's sliding-window inference with ``roi_size`` patches and ``overlap``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from medai.errors import MedAIError
from medai.pipeline.intensity import channel_specs, normalize, normalize_channels, quantile_bounds

StageCallback = Callable[[str, float], None]


def resize_tensor(x, size, mode: str):
    """Resize a (C, X, Y, Z) tensor to ``size``."""
    import torch.nn.functional as F

    size = tuple(int(s) for s in size)
    if tuple(x.shape[1:]) == size:
        return x
    kwargs = {"align_corners": False} if mode == "trilinear" else {}
    return F.interpolate(x[None], size, mode=mode, **kwargs)[0]


def channels_tensor(image: np.ndarray):
    """A (channels, X, Y, Z) float32 tensor of a (channels, X, Y, Z) or (X, Y, Z) image (no copy when possible)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    return x[None] if x.dim() == 3 else x


def _scores(output, spec: dict[str, Any]):
    """Network output (C, ...) -> class probabilities per the card's ``output``."""
    kind = spec.get("output", "probability")
    if kind == "softmax":
        return output.softmax(0)
    if kind == "sigmoid":
        return output.sigmoid()
    return output  # already probabilities, or logits used with argmax


def _bbox_with_margin(mask: np.ndarray, full_shape, margin: float) -> tuple[slice, slice, slice]:
    """Bounding box of ``mask`` scaled to ``full_shape``, grown by ``margin`` of its size on each side."""
    scale = np.array(full_shape) / np.array(mask.shape)
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        profile = np.flatnonzero(mask.mean(axis=others) > 0.02)
        if profile.size == 0:
            raise MedAIError("the localiser found no object to segment in this image")
        centre = scale[axis] * (profile.max() + 1 + profile.min()) / 2
        size = scale[axis] * (profile.max() + 1 - profile.min()) * (1 + 2 * margin)
        centre, size = np.round(centre), np.round(size)
        lo, hi = int(centre - size / 2), int(centre + size / 2)
        box.append(slice(max(0, lo), min(int(full_shape[axis]), hi)))
    return tuple(box)


def localise_crop_segment(image: np.ndarray, networks: dict, spec: dict[str, Any], intensity: dict[str, Any],
                          on_stage: Optional[StageCallback] = None):
    """The two-stage mode; ``networks`` holds 'localiser' and 'segmenter'."""
    import torch

    from medai.pipeline.postprocess import largest_component

    note = on_stage or (lambda stage, f: None)
    x = channels_tensor(image)
    if x.shape[0] != 1:
        raise MedAIError("the localise-crop-segment mode takes one input channel")
    intensity = channel_specs(intensity, 1)[0]
    shape = tuple(x.shape[1:])
    mode = spec.get("resize_mode", "nearest-exact")
    small = resize_tensor(x, spec["localiser_size"], mode)
    bounds = None
    if intensity.get("type") == "quantile-zscore":
        bounds = quantile_bounds(small.numpy(), intensity["lower"], intensity["upper"])
    note("localise", 0.0)
    located = _scores(networks["localiser"](normalize(small, intensity, bounds)[None])[0], spec)
    channel = spec.get("foreground_channel", 1)
    found = largest_component((located[channel] > 0.5).cpu().numpy())
    box = _bbox_with_margin(found, shape, spec.get("crop_margin", 0.1))
    note("segment", 0.0)
    crop = resize_tensor(x[(slice(None),) + box], spec["input_size"], mode)
    scores_crop = _scores(networks["segmenter"](normalize(crop, intensity, bounds)[None])[0], spec)
    crop_shape = tuple(s.stop - s.start for s in box)
    scores_box = resize_tensor(scores_crop, crop_shape, mode).cpu()
    scores = torch.zeros((scores_box.shape[0],) + shape, dtype=scores_box.dtype)
    if scores.shape[0] > 1 and channel != 0:
        scores[0] = 1.0  # outside the box: background
    scores[(slice(None),) + box] = scores_box
    return scores.numpy()


def whole_image(image: np.ndarray, networks: dict, spec: dict[str, Any], intensity: dict[str, Any],
                on_stage: Optional[StageCallback] = None):
    """Resize to ``input_size`` (if given), run the 'segmenter', resize back."""
    note = on_stage or (lambda stage, f: None)
    x = channels_tensor(image)
    mode = spec.get("resize_mode", "trilinear")
    resized = resize_tensor(x, spec["input_size"], mode) if spec.get("input_size") else x
    note("segment", 0.0)
    scores = _scores(networks["segmenter"](normalize_channels(resized, intensity)[None])[0], spec)
    return resize_tensor(scores, x.shape[1:], "trilinear" if mode == "trilinear" else mode).cpu().numpy()


def sliding_window(image: np.ndarray, networks: dict, spec: dict[str, Any], intensity: dict[str, Any],
                   on_stage: Optional[StageCallback] = None):
    """MONAI's sliding-window inference over the whole image at its own resolution."""
    import torch
    from monai.inferers import sliding_window_inference

    note = on_stage or (lambda stage, f: None)
    x = normalize_channels(channels_tensor(image), intensity)
    note("segment", 0.0)
    # The runtimes return inference tensors; MONAI weights them in place, which torch allows only in this mode.
    with torch.inference_mode():
        out = sliding_window_inference(x[None], tuple(spec["roi_size"]), sw_batch_size=1,
                                       predictor=networks["segmenter"], overlap=spec.get("overlap", 0.25),
                                       mode=spec.get("blend_mode", "gaussian"))
    return _scores(out[0], spec).cpu().numpy()


MODES = {"localise-crop-segment": localise_crop_segment, "whole": whole_image, "sliding-window": sliding_window}
