"""Training a 2D or 3D image classifier (DenseNet, ResNet) and packaging it for the classification pipeline.

Every image becomes the network input the packaged model's ``whole`` mode will build
(:func:`medai.training.preprocess.classification_input`: canonical RAS, resized to ``input_size``, normalised);
training augments it (left-right flip, small rotation and scaling, intensity scale and shift) and minimises
cross-entropy weighted against class imbalance with AdamW. Validation accuracy is computed on the unaugmented
inputs every epoch; among epochs with the same accuracy the lower validation cross-entropy wins.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from medai.errors import MedAIError
from medai.training.config import PackageInfo, TrainConfig
from medai.training.datalist import load_datalist

COMPATIBLE_KEYS = ("task", "network", "size", "width", "dims", "input_size", "intensity")


def input_size_for(config: TrainConfig) -> tuple[int, int, int]:
    """The card's ``input_size`` (X, Y, Z): Z is 1 for a 2D network; defaults 128x128 (2D) or 64^3 (3D)."""
    size = config.input_size or ((128, 128) if config.dims == 2 else (64, 64, 64))
    size = tuple(int(s) for s in size)
    if any(s < 1 for s in size):
        raise MedAIError(f"--input-size must be positive; got {list(size)}")
    if config.dims == 2:
        if len(size) == 3 and size[2] != 1 or len(size) not in (2, 3):
            raise MedAIError(f"--dims 2 takes --input-size X Y; got {list(size)}")
        return (size[0], size[1], 1)
    if len(size) != 3 or size[2] == 1:
        raise MedAIError(f"--dims 3 takes --input-size X Y Z with Z > 1; got {list(size)}")
    return size  # type: ignore[return-value]


def _augmentation():
    from monai.transforms import Compose, RandAffine, RandFlip, RandScaleIntensity, RandShiftIntensity

    return Compose([
        RandFlip(prob=0.5, spatial_axis=0),  # canonical RAS: axis 0 is left-right
        RandAffine(prob=0.5, rotate_range=0.15, scale_range=0.1, padding_mode="zeros"),
        RandScaleIntensity(factors=0.1, prob=0.5),
        RandShiftIntensity(offsets=0.1, prob=0.5),
    ])


def train_classification(config: TrainConfig, info: PackageInfo, progress, resume: bool = False,
                         overwrite: bool = False) -> Path:
    """Train per ``config`` and write the package to ``config.output``; returns the package folder."""
    import torch

    from medai.io import read_volume
    from medai.runtime.device import configure_threads, resolve_device
    from medai.training.loop import EpochResult, epoch_seed, fit, seed_torch
    from medai.training.networks import build_network, classification_spec
    from medai.training.package import check_card, classification_card, training_record, write_package
    from medai.training.preprocess import classification_input
    from medai.training.session import check_output, open_session

    config.check()
    size = input_size_for(config)
    config.input_size = size
    check_output(config.output, resume, overwrite)
    datalist = load_datalist(config.data, "classification", config.validation_fraction, config.seed)
    classes = datalist.classes
    spec = classification_spec(config.network, len(classes), config.dims, config.size, config.width)
    card = classification_card(info, config, spec, classes, size)
    check_card(card, "classifier", config.output)
    device = resolve_device(config.device)
    threads = configure_threads()
    t0 = time.perf_counter()

    def inputs(cases):
        images = [classification_input(read_volume(c.image), size, config.intensity).float() for c in cases]
        return torch.stack(images), torch.tensor([classes.index(c.label) for c in cases])

    train_x, train_y = inputs(datalist.training)
    val_x, val_y = inputs(datalist.validation)
    counts = np.bincount(train_y.numpy(), minlength=len(classes))
    if (counts == 0).any():
        raise MedAIError(f"class '{classes[int(np.argmin(counts))]}' has no training image", datalist.source)
    config_dict = config.to_dict()
    session = open_session(config.output, resume, config_dict, COMPATIBLE_KEYS)
    log = session.log
    log.write(f"medai train --task classification: {len(train_y)} training, {len(val_y)} validation images "
              f"({datalist.split} split) from {datalist.source}; read in {time.perf_counter() - t0:.1f} s")
    log.write(f"classes {dict(zip(classes, counts.tolist()))} (training images per class)")
    log.write(f"network {spec['name']} {spec['args']}; input size {list(size)}")
    log.write(f"config {config_dict}; device {device}, {threads} threads")
    weights = torch.tensor(len(train_y) / (len(classes) * counts), dtype=torch.float32) if config.class_weights \
        else torch.ones(len(classes))
    log.write(f"class weights {dict(zip(classes, [round(float(w), 4) for w in weights]))}")

    augment = _augmentation()
    seed_torch(config.seed)
    model = build_network(spec).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_function = torch.nn.CrossEntropyLoss(weight=weights.to(device))

    def run_epoch(epoch: int, report: Callable[..., None]):
        seed = epoch_seed(config.seed, epoch)
        augment.set_random_state(seed=seed)
        order = np.random.default_rng(seed).permutation(len(train_y))
        model.train()
        losses = []
        batches = range(0, len(order), config.batch_size)
        for step, start in enumerate(batches):
            chosen = order[start:start + config.batch_size]
            images = torch.stack([augment(train_x[i]).as_tensor() for i in chosen]).to(device)
            optimizer.zero_grad()
            loss = loss_function(model(images), train_y[chosen].to(device))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            report(0.9 * (step + 1) / len(batches))
        model.eval()
        report(0.9, "validate")
        with torch.no_grad():
            logits = torch.cat([model(val_x[i:i + config.batch_size].to(device)).cpu()
                                for i in range(0, len(val_y), config.batch_size)])
        val_loss = float(torch.nn.functional.cross_entropy(logits, val_y, weight=weights))
        accuracy = float((logits.argmax(1) == val_y).float().mean())
        return EpochResult(float(np.mean(losses)), accuracy, -val_loss, {"val_loss": val_loss})

    try:
        result = fit(model, optimizer, run_epoch, config.epochs, session.work, config.seed, log, progress,
                     session.resume, metric_name="val_accuracy", saved={"config": config_dict})
        log.write(f"best val_accuracy {result.best_metric:.4f} at epoch {result.best_epoch}; writing the package")
    finally:
        log.close()
    model.load_state_dict(result.best_state)
    training = training_record("classification", config, config_dict, datalist, result, "val_accuracy", device,
                               threads, classes=classes)
    example = (1, 1, size[0], size[1]) if config.dims == 2 else (1, 1, *size)
    return write_package(config.output, card, "classifier", model, example, training, session.work,
                         dynamic_spatial=False)
