"""The model package a training run produces: a folder MedAISeg / MedAIClassify / ``medai`` load by path.

``OUTPUT/``:

* ``card.json`` -- the model card (validated against the schema), whose preprocessing and inference sections
  are the ones training used (see :mod:`medai.training.preprocess`);
* ``network.ts`` -- the best epoch's network, traced to TorchScript (the card's ``weights``);
* ``network.onnx`` -- the same network in ONNX (the card's ``onnx_weights``), by
  :func:`medai.runtime.onnx_export.export_onnx`;
* ``training.json`` -- config, seed, data lists, per-epoch history, best metric, library versions;
* ``train.log`` -- the run's readable log; ``checkpoint.pt`` -- the last epoch's state, for ``--resume``.

The folder is assembled in a hidden staging folder and moved into place at the end, so a failed run leaves
no partial package.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from medai.errors import MedAIError
from medai.training.config import PackageInfo, TrainConfig

#: Colours for labels the data does not colour (Slicer-like, distinct).
PALETTE = ("#80ae80", "#f1d691", "#b17a65", "#6fb8d2", "#d8654f", "#dd8265", "#90ee90", "#c0687b",
           "#dcf514", "#4e3f1a", "#e6dc46", "#c89664")
#: Largest difference allowed between the traced network and the trained one on the example input.
TRACE_TOLERANCE = 1e-4


def segment_labels(values: Sequence[int], names: dict[int, str],
                   given: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Card label entries for label ``values``: from ``given`` (``--labels-json``), else named from the data."""
    by_value = {int(entry["value"]): entry for entry in given}
    labels = []
    for index, value in enumerate(values):
        entry = dict(by_value.get(value, {}))
        entry["value"] = int(value)
        entry.setdefault("name", names.get(value, f"label {value}"))
        entry.setdefault("color", PALETTE[index % len(PALETTE)])
        labels.append(entry)
    return labels


def _input_section(info: PackageInfo, dimensions: Any) -> dict[str, Any]:
    section: dict[str, Any] = {"modality": info.modality, "dimensions": dimensions}
    if info.sequence:
        section["sequence"] = info.sequence
    if info.body_part:
        section["body_part"] = info.body_part
    return section


def _common(info: PackageInfo, task: str, network: dict[str, Any], dimensions: Any) -> dict[str, Any]:
    return {"schema_version": 1, "id": info.id, "name": info.name, "version": info.version, "task": task,
            "description": info.description, "input": _input_section(info, dimensions), "runtime": "torchscript",
            "network": network, "license": info.license, "source": info.source}


def segmentation_card(info: PackageInfo, config: TrainConfig, network: dict[str, Any],
                      labels: list[dict[str, Any]]) -> dict[str, Any]:
    """The card of a segmentation package (weights filled in by :func:`write_package`)."""
    preprocessing: dict[str, Any] = {"orientation": "RAS", "intensity": config.intensity}
    if config.spacing is not None:
        preprocessing["spacing"] = [float(s) for s in config.spacing]
    return {**_common(info, "segmentation", network, 3), "labels": labels, "preprocessing": preprocessing,
            "inference": {"mode": "sliding-window", "roi_size": [int(r) for r in config.roi],
                          "overlap": config.overlap, "output": "softmax"},
            "postprocessing": {"argmax": True}}


def classification_card(info: PackageInfo, config: TrainConfig, network: dict[str, Any], classes: list[str],
                        input_size: Sequence[int]) -> dict[str, Any]:
    """The card of a classification package: ``whole`` mode at ``input_size`` (Z = 1 for a 2D network)."""
    return {**_common(info, "classification", network, [2, 3]), "classes": list(classes),
            "preprocessing": {"orientation": "RAS", "intensity": config.intensity},
            "inference": {"mode": "whole", "input_size": [int(s) for s in input_size], "resize_mode": "trilinear",
                          "output": "softmax"}}


def check_card(card: dict[str, Any], role: str, output: Path) -> None:
    """Validate ``card`` (with placeholder weights) before training, so a bad option fails in seconds, not hours."""
    from medai.models.card import card_from_dict

    placeholder = {role: {"path": "network.ts", "sha256": "0" * 64}}
    card_from_dict({**card, "weights": placeholder, "onnx_weights": placeholder}, origin=output / "card.json")


def _trace(model, example, path: Path) -> None:
    """Trace ``model`` on ``example`` to TorchScript at ``path`` and check the file reproduces the model.

    The check runs the saved file on the example and on a batch of two: the classification pipeline feeds a
    2D network several slices at once.
    """
    import warnings

    import torch

    with torch.no_grad(), warnings.catch_warnings():
        # MONAI's shape checks become constants in the trace; the file is checked on other batches below.
        # TorchScript is the card's runtime: torch's notes that it is deprecated are not for the user.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(path))
        saved = torch.jit.load(str(path))
        pair = torch.cat([example, example.flip(-1)])
        difference = max(float((model(x) - saved(x)).abs().max()) for x in (example, pair))
    if difference > TRACE_TOLERANCE:
        raise RuntimeError(f"the traced network differs from the trained one by {difference:g}")


def write_package(output: Path, card: dict[str, Any], role: str, model, example_shape: Sequence[int],
                  training: dict[str, Any], work: Path, dynamic_spatial: bool) -> Path:
    """Write the package for ``model`` (best weights, on any device) into ``output``, atomically.

    ``role`` is the card's weight role ('segmenter' or 'classifier'); ``work`` holds train.log and checkpoint.pt.
    An existing ``output`` (a resumed or overwritten run) is replaced only once the new package is complete.
    """
    import torch

    from medai.io.atomic import staging_folder
    from medai.models.card import card_from_dict
    from medai.models.weights import sha256_of
    from medai.runtime.onnx_export import export_onnx
    from medai.training.loop import LAST, LOG

    model = model.to("cpu").eval()
    example = torch.randn(*[int(s) for s in example_shape], generator=torch.Generator().manual_seed(0))
    with staging_folder(output.parent) as stage:
        _trace(model, example, stage / "network.ts")
        export_onnx(model, stage / "network.onnx", tuple(int(s) for s in example_shape),
                    dynamic_spatial=dynamic_spatial)
        card = {**card, "weights": {role: {"path": "network.ts", "sha256": sha256_of(stage / "network.ts")}},
                "onnx_weights": {role: {"path": "network.onnx", "sha256": sha256_of(stage / "network.onnx")}}}
        card_from_dict(card, folder=stage, origin=output / "card.json")
        (stage / "training.json").write_text(json.dumps(training, indent=2, default=_plain) + "\n", encoding="utf-8")
        for name in (LOG, LAST):
            shutil.copyfile(work / name, stage / name)
        (stage / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        _publish(stage, output)
    shutil.rmtree(work, ignore_errors=True)
    return output


def _publish(stage: Path, output: Path) -> None:
    """Move ``stage`` to ``output``; an existing ``output`` is set aside first and removed after."""
    old: Optional[Path] = None
    if output.exists():
        old = output.with_name(f".{output.name}.replaced-{os.getpid()}")
        os.replace(output, old)
    try:
        os.replace(stage, output)
    except OSError as error:
        if old is not None:
            os.replace(old, output)
        raise MedAIError(f"could not publish the model package ({error})", output) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _plain(value: Any) -> Any:
    """JSON for numpy numbers and paths in training.json."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def training_record(task: str, config: TrainConfig, config_dict: dict[str, Any], datalist, result, metric_name: str,
                    device: str, threads: int, **extra: Any) -> dict[str, Any]:
    """What training.json holds: the options, the data split, ``extra`` (labels or classes), the per-epoch history,
    the best epoch and the library versions."""
    return {"task": task, "config": config_dict, "seed": config.seed, "data": datalist.to_dict(), **extra,
            "best_metric": {metric_name: result.best_metric, "epoch": result.best_epoch},
            "epochs": len(result.history), "resumed_from_epoch": result.resumed_from, "history": result.history,
            "versions": versions(), "device": device, "threads": threads}


def versions() -> dict[str, str]:
    """Library versions that decide what a run computes."""
    import platform

    import monai
    import torch

    from medai import __version__

    return {"medai": __version__, "torch": torch.__version__, "monai": monai.__version__, "numpy": np.__version__,
            "python": platform.python_version()}
