"""Training a 3D segmentation network (SegResNet, UNet, DynUNet) and packaging it for ``medai segment``.

Each epoch draws ``samples_per_case`` random ``roi`` patches from every training case (half centred on a
labelled voxel, half anywhere), augments them (left-right flip, small rotation and scaling, intensity scale
and shift), and minimises Dice + cross-entropy with AdamW. Validation runs the packaged pipeline's own sliding
window (:func:`medai.pipeline.inference.sliding_window`) and argmax on each whole validation image and reports
the mean Dice over labels and cases; the best epoch's weights become the package.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medai.errors import MedAIError
from medai.training.config import PackageInfo, TrainConfig
from medai.training.datalist import Case, load_datalist

COMPATIBLE_KEYS = ("task", "network", "width", "roi", "spacing", "intensity")


@dataclass
class _Prepared:
    name: str
    image: np.ndarray  # canonical X,Y,Z, not normalised (validation: the pipeline normalises)
    label: np.ndarray  # canonical X,Y,Z label values


def _prepare(case: Case, spacing) -> _Prepared:
    from medai.io import read_volume
    from medai.training.preprocess import segmentation_arrays

    image = read_volume(case.image)
    label = read_volume(case.label)
    image_xyz, label_xyz = segmentation_arrays(image, label, spacing, case.label)
    return _Prepared(case.image.name, image_xyz, label_xyz)


def _channels(cases: list[_Prepared], names: dict[int, str], given: list[dict[str, Any]],
              paths: list[Path]) -> list[int]:
    """Label values, sorted; channel ``c`` of the network is ``values[c - 1]``. Unknown values are refused."""
    known = set(names) | {int(entry["value"]) for entry in given}
    values: set[int] = set()
    for case, path in zip(cases, paths):
        found = {int(v) for v in np.unique(case.label)} - {0}
        if any(v < 0 for v in found):
            raise MedAIError("label map holds negative values", path)
        if known and not found <= known:
            raise MedAIError(f"label map holds value {min(found - known)}, which the datalist's labels do not name",
                             path)
        values |= found
    values |= known
    if not values:
        raise MedAIError("no training label map holds a labelled voxel", paths[0] if paths else None)
    return sorted(values)


def _to_channels(label: np.ndarray, values: list[int]) -> np.ndarray:
    lookup = np.zeros(max(values) + 1, np.int64)
    lookup[values] = np.arange(1, len(values) + 1)
    return lookup[np.clip(label, 0, max(values))].astype(np.uint8)


def _augmentation(roi, samples: int):
    from monai.transforms import (Compose, RandAffined, RandCropByPosNegLabeld, RandFlipd, RandScaleIntensityd,
                                  RandShiftIntensityd, SpatialPadd)

    keys = ("image", "label")
    return Compose([
        SpatialPadd(keys, spatial_size=roi),
        RandCropByPosNegLabeld(keys, label_key="label", spatial_size=roi, pos=1, neg=1, num_samples=samples),
        RandFlipd(keys, prob=0.5, spatial_axis=0),  # canonical RAS: axis 0 is left-right
        RandAffined(keys, prob=0.3, rotate_range=(0.15, 0.15, 0.15), scale_range=(0.1, 0.1, 0.1),
                    mode=("bilinear", "nearest"), padding_mode="zeros"),
        RandScaleIntensityd("image", factors=0.1, prob=0.5),
        RandShiftIntensityd("image", offsets=0.1, prob=0.5),
    ])


def train_segmentation(config: TrainConfig, info: PackageInfo, progress, resume: bool = False,
                       overwrite: bool = False) -> Path:
    """Train per ``config`` and write the package to ``config.output``; returns the package folder."""
    import torch
    from monai.losses import DiceCELoss

    from medai.metrics import dice
    from medai.pipeline.inference import sliding_window
    from medai.pipeline.intensity import normalize
    from medai.pipeline.postprocess import scores_to_labels
    from medai.runtime.device import configure_threads, resolve_device
    from medai.training.loop import EpochResult, epoch_seed, fit, seed_torch
    from medai.training.networks import SEGMENTATION_DIVISOR, build_network, segmentation_spec
    from medai.training.package import (check_card, segment_labels, segmentation_card, training_record,
                                        write_package)
    from medai.training.session import check_output, open_session

    config.check()
    if any(r % SEGMENTATION_DIVISOR for r in config.roi):
        raise MedAIError(f"--roi sides must be multiples of {SEGMENTATION_DIVISOR} (the networks downsample three "
                         f"times); got {list(config.roi)}")
    check_output(config.output, resume, overwrite)
    datalist = load_datalist(config.data, "segmentation", config.validation_fraction, config.seed)
    device = resolve_device(config.device)
    threads = configure_threads()
    t0 = time.perf_counter()
    train_cases = [_prepare(c, config.spacing) for c in datalist.training]
    val_cases = [_prepare(c, config.spacing) for c in datalist.validation]
    values = _channels(train_cases + val_cases, datalist.label_names, info.labels,
                       [c.label for c in datalist.training + datalist.validation])
    labels = segment_labels(values, datalist.label_names, info.labels)
    spec = segmentation_spec(config.network, 1 + len(values), config.width or 16)
    card = segmentation_card(info, config, spec, labels)
    check_card(card, "segmenter", config.output)
    config_dict = config.to_dict()
    session = open_session(config.output, resume, config_dict, COMPATIBLE_KEYS)
    log = session.log
    log.write(f"medai train --task segmentation: {len(train_cases)} training, {len(val_cases)} validation cases "
              f"({datalist.split} split) from {datalist.source}; read in {time.perf_counter() - t0:.1f} s")
    log.write(f"network {spec['name']} {spec['args']}; labels {[(l['value'], l['name']) for l in labels]}")
    log.write(f"config {config_dict}; device {device}, {threads} threads")

    train_data = [{"image": normalize(torch.from_numpy(c.image)[None], config.intensity).float(),
                   "label": torch.from_numpy(_to_channels(c.label, values))[None]} for c in train_cases]
    val_labels = [_to_channels(c.label, values) for c in val_cases]
    augment = _augmentation(config.roi, config.samples_per_case)
    seed_torch(config.seed)
    model = build_network(spec).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    window = {"roi_size": list(config.roi), "overlap": config.overlap, "output": "softmax"}
    channel_values = list(range(1, len(values) + 1))

    def run_epoch(epoch: int, report: Callable[..., None]):
        seed = epoch_seed(config.seed, epoch)
        augment.set_random_state(seed=seed)
        patches = [patch for case in train_data for patch in augment(case)]
        order = np.random.default_rng(seed).permutation(len(patches))
        model.train()
        losses = []
        batches = range(0, len(order), config.batch_size)
        for step, start in enumerate(batches):
            chosen = [patches[i] for i in order[start:start + config.batch_size]]
            # plain tensors: MONAI's MetaTensor tracks metadata through every layer, which costs time here
            images = torch.stack([p["image"].as_tensor() for p in chosen]).to(device)
            targets = torch.stack([p["label"].as_tensor() for p in chosen]).to(device)
            optimizer.zero_grad()
            loss = loss_function(model(images), targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            report(0.8 * (step + 1) / len(batches))
        model.eval()
        scores = []
        predictor = {"segmenter": lambda batch: model(batch.to(device))}  # windows are cut on the CPU
        with torch.no_grad():
            for index, (case, truth) in enumerate(zip(val_cases, val_labels)):
                probabilities = sliding_window(case.image, predictor, window, config.intensity)
                predicted = scores_to_labels(probabilities, {"argmax": True}, channel_values)
                scores += [dice(predicted == c, truth == c) for c in channel_values]
                report(0.8 + 0.2 * (index + 1) / len(val_cases), "validate")
        return EpochResult(float(np.mean(losses)), float(np.mean(scores)))

    try:
        result = fit(model, optimizer, run_epoch, config.epochs, session.work, config.seed, log, progress,
                     session.resume, metric_name="val_dice", saved={"config": config_dict})
        log.write(f"best val_dice {result.best_metric:.4f} at epoch {result.best_epoch}; writing the package")
    finally:
        log.close()
    model.load_state_dict(result.best_state)
    training = training_record("segmentation", config, config_dict, datalist, result, "val_dice", device, threads,
                               labels=labels)
    return write_package(config.output, card, "segmenter", model, (1, 1, *config.roi), training, session.work,
                         dynamic_spatial=True)
