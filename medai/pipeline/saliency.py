"""Saliency maps: where a classification network looked when it chose a class, on the input's exact grid.

* **Grad-CAM** (Selvaraju et al. 2017) when the network's last convolutional block is reachable: a MONAI DenseNet
  (TorchScript or state dict) exposes ``features`` (the convolutional part) and ``class_layers`` (the head). The
  feature maps are weighted by the mean gradient of the class score and summed; negative evidence is dropped.
* **Occlusion sensitivity** (MONAI's ``OcclusionSensitivity``) for any other network, and for engines without
  gradients (ONNX Runtime, OpenVINO): how much the class probability drops when a patch is blurred away.

A 2D network's map is computed on every slice across the image's slice axis, so the map covers the whole volume.
Maps are resized from the network's grid to the canonical image (the inverse of the input resize) and put back
on the input's grid by the exact inverse of the canonical reorientation: no resampling between grids. Values are
scaled to 0..1 by the map's maximum.
"""

from __future__ import annotations

from typing import Optional, Protocol

import numpy as np

from medai.models.card import ModelCard
from medai.volume import Volume


class Explained(Protocol):
    """What a saliency map needs of a classifier (:class:`medai.pipeline.classify.Classifier` is one)."""

    card: ModelCard
    classes: list[str]
    engine_request: str
    input_size: list[int]
    two_d: bool

    def load(self):
        """The network, as the classifier runs it."""

#: Slices per network call while mapping a volume slice by slice.
CHUNK = 32
#: Occlusion patch side, as a fraction of the network's input side.
OCCLUSION_PATCH = 0.25


def saliency_map(classifier: Explained, volume: Volume, class_index: int) -> Volume:
    """The 0..1 saliency of class ``class_index`` for ``volume`` (see the module docstring), on its grid."""
    import torch
    import torch.nn.functional as F

    from medai.pipeline.classify_input import canonical_image, slice_batch, volume_batch

    card = classifier.card
    image = canonical_image(volume, card.preprocessing.get("orientation", "RAS"))
    intensity = card.preprocessing.get("intensity", {"type": "none"})
    explain = _explainer(classifier, class_index)
    if classifier.two_d:
        slices = image.slices()
        size = tuple(slices.shape[1:])
        maps = []
        for start in range(0, len(slices), CHUNK):
            cam = explain(slice_batch(slices[start:start + CHUNK], classifier.input_size, intensity))
            maps.append(F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0])
        canonical = image.from_slices(torch.cat(maps).numpy())
    else:
        cam = explain(volume_batch(image.whole(), classifier.input_size, intensity))
        canonical = F.interpolate(cam[:, None], size=image.shape, mode="trilinear", align_corners=False)[0, 0]
        canonical = canonical.numpy()
    canonical = np.clip(canonical, 0, None)
    peak = float(canonical.max())
    if peak > 0:
        canonical = canonical / peak
    out = volume.with_array(image.to_input_grid(canonical.astype(np.float32)))
    out.metadata = {"saliency_of": classifier.classes[class_index], "model": card.id}
    return out


def _explainer(classifier: Explained, class_index: int):
    """``batch -> (N, *spatial) map`` on the network's grid: Grad-CAM if reachable, else occlusion."""
    parts = _gradcam_parts(torch_module(classifier))
    if parts is not None:
        return lambda batch: grad_cam(parts[0], parts[1], batch, class_index)
    network = classifier.load()
    return lambda batch: occlusion(network, batch, class_index)


def torch_module(classifier: Explained):
    """The card's classifier as a differentiable torch module (not frozen), or None when there is none."""
    from medai.models.weights import verified_weight

    runtime = classifier.card.data.get("runtime", "torchscript")
    if runtime == "onnx" or classifier.engine_request in ("onnx", "openvino"):
        return None
    path = verified_weight(classifier.card, "classifier")
    if runtime == "pytorch-state-dict":
        from medai.runtime.state_dict import StateDictNetwork

        return StateDictNetwork(path, classifier.card, "cpu").module
    import torch

    return torch.jit.load(str(path), map_location="cpu").eval()


def _gradcam_parts(module) -> Optional[tuple]:
    """(convolutional part, head) of a network whose last convolutional block is reachable, else None."""
    if module is None:
        return None
    children = dict(module.named_children())
    if "features" in children and "class_layers" in children:  # MONAI DenseNet, DenseNet121, ...
        return children["features"], children["class_layers"]
    return None


def grad_cam(features, head, batch, class_index: int):
    """Grad-CAM of ``class_index`` for a (N, C, ...) batch: (N, *feature grid), non-negative."""
    import torch

    with torch.enable_grad():
        activations = features(batch).detach().requires_grad_(True)
        head(activations.clone())[:, class_index].sum().backward()  # a clone: heads may apply in-place ReLU
    spatial = tuple(range(2, activations.dim()))
    weights = activations.grad.mean(dim=spatial, keepdim=True)
    return torch.relu((weights * activations).sum(1)).detach()


def occlusion(network, batch, class_index: int):
    """MONAI occlusion sensitivity of ``class_index`` for each image of a batch: (N, *spatial), non-negative.

    The importance of a patch is how much the class's logit drops when the patch is replaced by the image mean
    (logits, not probabilities: a confident softmax barely moves, its logit does).
    """
    import torch
    from monai.visualize import OcclusionSensitivity

    class Wrapped(torch.nn.Module):  # OcclusionSensitivity wants a module; the engines give callables
        def forward(self, x):
            return network(x)

    patch = max(2, int(round(OCCLUSION_PATCH * min(batch.shape[2:]))))
    sensitivity = OcclusionSensitivity(Wrapped(), mask_size=patch, n_batch=64, verbose=False, mode="mean_img",
                                       activate=False)
    maps = []
    with torch.no_grad():
        for image in batch:
            reference = network(image[None]).float()[0, class_index]
            occluded, _ = sensitivity(image[None])  # (1, classes, *spatial)
            maps.append((reference - occluded[0, class_index]).clamp_min(0))
    return torch.stack(maps)
