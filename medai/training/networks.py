"""The MONAI networks ``medai train`` builds, described as ``{"name": class in monai.networks.nets, "args": {...}}``.

The description is JSON (it goes into the package's card and training.json), and :func:`build_network` is the
one place that turns it into a module, so a checkpoint always meets the architecture it was saved from.
"""

from __future__ import annotations

from typing import Any, Optional

from medai.errors import MedAIError

SEGMENTATION_NETWORKS = ("segresnet", "unet", "dynunet")
CLASSIFICATION_NETWORKS = ("densenet", "resnet")
#: ``--size`` per classification network: DenseNet "small" (3 short dense blocks) or 121; ResNet depth.
CLASSIFICATION_SIZES = {"densenet": ("small", "121"), "resnet": ("10", "18", "34", "50")}
#: Every segmentation network here downsamples three times: patch sides must be multiples of this.
SEGMENTATION_DIVISOR = 8

_RESNET_LAYERS = {"10": ("basic", [1, 1, 1, 1]), "18": ("basic", [2, 2, 2, 2]), "34": ("basic", [3, 4, 6, 3]),
                  "50": ("bottleneck", [3, 4, 6, 3])}


def segmentation_spec(network: str, classes: int, width: int = 16) -> dict[str, Any]:
    """A 3D segmentation network with one input channel and ``classes`` output channels (background included).

    ``width`` is the number of feature maps at full resolution; it doubles at each of three downsamplings.
    """
    widths = [width, 2 * width, 4 * width, 8 * width]
    common = {"spatial_dims": 3, "in_channels": 1, "out_channels": classes}
    if network == "segresnet":
        if width % 8:
            raise MedAIError(f"SegResNet uses group normalisation in groups of 8: --width must be a multiple of 8; "
                             f"got {width}")
        return {"name": "SegResNet", "args": {**common, "init_filters": width, "blocks_down": [1, 2, 2, 4],
                                              "blocks_up": [1, 1, 1]}}
    if network == "unet":
        return {"name": "UNet", "args": {**common, "channels": widths, "strides": [2, 2, 2], "num_res_units": 2}}
    if network == "dynunet":
        return {"name": "DynUNet", "args": {**common, "kernel_size": [3, 3, 3, 3], "strides": [1, 2, 2, 2],
                                            "upsample_kernel_size": [2, 2, 2], "filters": widths, "res_block": True}}
    raise MedAIError(f"unknown segmentation network '{network}'; use one of {', '.join(SEGMENTATION_NETWORKS)}")


def classification_spec(network: str, classes: int, dims: int, size: Optional[str] = None,
                        width: Optional[int] = None) -> dict[str, Any]:
    """A 2D or 3D classifier with one input channel and ``classes`` logits.

    DenseNet ``small``: blocks (2, 4, 4), ``width`` initial features (default 16), growth ``width // 2``;
    ``121``: the standard DenseNet-121. ResNet 10/18/34/50 with block widths ``width``, 2x, 4x, 8x (default 64,
    the standard ResNet).
    """
    if dims not in (2, 3):
        raise MedAIError(f"--dims must be 2 or 3; got {dims}")
    if network not in CLASSIFICATION_SIZES:
        raise MedAIError(f"unknown classification network '{network}'; use one of {', '.join(CLASSIFICATION_NETWORKS)}")
    size = size or CLASSIFICATION_SIZES[network][0]
    if size not in CLASSIFICATION_SIZES[network]:
        raise MedAIError(f"--size {size} is not a {network} size; "
                         f"use one of {', '.join(CLASSIFICATION_SIZES[network])}")
    if network == "densenet":
        common = {"spatial_dims": dims, "in_channels": 1, "out_channels": classes}
        if size == "121":
            return {"name": "DenseNet121", "args": common}
        w = width or 16
        return {"name": "DenseNet", "args": {**common, "init_features": w, "growth_rate": max(1, w // 2),
                                             "block_config": [2, 4, 4]}}
    w = width or 64
    block, layers = _RESNET_LAYERS[size]
    return {"name": "ResNet", "args": {"block": block, "layers": layers, "block_inplanes": [w, 2 * w, 4 * w, 8 * w],
                                       "spatial_dims": dims, "n_input_channels": 1, "num_classes": classes}}


def build_network(spec: dict[str, Any]):
    """The torch module a spec describes (freshly initialised: seed torch first for reproducible weights)."""
    from monai.networks import nets

    return getattr(nets, spec["name"])(**spec["args"])
