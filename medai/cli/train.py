"""``medai train DATA --task segmentation|classification -o PACKAGE``: train a MONAI network into a model package.

DATA is a datalist JSON (Medical Segmentation Decathlon layout) or a folder (segmentation: imagesTr/ + labelsTr/;
classification: one sub-folder of images per class). The package folder (card.json, network.ts, network.onnx,
training.json, train.log, checkpoint.pt) loads with ``medai segment --model PACKAGE`` / ``medai classify``.
``--features`` trains a classic classifier (random forest or SVM) on image features instead.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

from medai.errors import MedAIError
from medai.io.json_file import read_json

DEFAULTS = {"segmentation": {"network": "segresnet", "batch_size": 2, "intensity": "quantile-zscore"},
            "classification": {"network": "densenet", "batch_size": 8, "intensity": "zscore"}}


def add_parser(subparsers) -> argparse.ArgumentParser:
    from medai.training.config import INTENSITY_TYPES
    from medai.training.networks import CLASSIFICATION_NETWORKS, SEGMENTATION_NETWORKS

    parser = subparsers.add_parser(
        "train", help="train a segmentation or classification model into a model package",
        description="Train a MONAI network on labelled images and write a model package (card + TorchScript + "
                    "ONNX) that `medai segment --model PACKAGE`, `medai classify` and Slicer load.")
    parser.add_argument("data", metavar="DATA", help="datalist JSON (Decathlon layout) or training folder")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="PACKAGE",
                        help="model package folder to write")
    parser.add_argument("--task", choices=("segmentation", "classification"),
                        help="what to train (required unless --features)")
    net = parser.add_argument_group("network and training")
    net.add_argument("--network", choices=SEGMENTATION_NETWORKS + CLASSIFICATION_NETWORKS,
                     help="segmentation: segresnet (default), unet, dynunet; "
                          "classification: densenet (default), resnet")
    net.add_argument("--size", help="classification network size: densenet small (default) or 121; "
                                    "resnet 10 (default), 18, 34 or 50")
    net.add_argument("--width", type=int, help="feature maps of the first layer (segmentation default 16; "
                                               "densenet small 16; resnet 64)")
    net.add_argument("--epochs", type=int, default=10, help="epochs to train (default %(default)s)")
    net.add_argument("--batch-size", type=int,
                     help="patches or images per step (default 2 segmentation, 8 classification)")
    net.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate, constant (default %(default)s)")
    net.add_argument("--weight-decay", type=float, default=1e-5, help="AdamW weight decay (default %(default)s)")
    net.add_argument("--seed", type=int, default=0, help="seed of every random choice (default %(default)s)")
    net.add_argument("--validation-fraction", type=float, default=0.2,
                     help="share of cases held out for validation when DATA lists none (default %(default)s)")
    net.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    net.add_argument("--resume", action="store_true",
                     help="continue from PACKAGE's checkpoint (an interrupted run, or a finished one given more "
                          "--epochs)")
    net.add_argument("--overwrite", action="store_true", help="replace an existing PACKAGE with a new run")
    pre = parser.add_argument_group("preprocessing (recorded in the card, applied identically at inference)")
    pre.add_argument("--intensity", choices=INTENSITY_TYPES,
                     help="normalisation: quantile-zscore (segmentation default: clip to the 0.5/99.5 %% quantiles, "
                          "z-score), zscore (classification default), range (--intensity-range), none")
    pre.add_argument("--intensity-range", type=float, nargs=4, metavar=("A_MIN", "A_MAX", "B_MIN", "B_MAX"),
                     help="for --intensity range: map [A_MIN, A_MAX] to [B_MIN, B_MAX], clipped (e.g. a CT window)")
    seg = parser.add_argument_group("segmentation")
    seg.add_argument("--roi", type=int, nargs=3, default=(64, 64, 64), metavar=("X", "Y", "Z"),
                     help="patch size in voxels along the canonical RAS axes, multiples of 8; also the sliding "
                          "window (default 64 64 64)")
    seg.add_argument("--spacing", type=float, nargs=3, metavar=("X", "Y", "Z"),
                     help="resample images to this spacing in mm along the canonical RAS axes first, recorded as the "
                          "card's preprocessing.spacing (default: keep each image's own)")
    seg.add_argument("--samples-per-case", type=int, default=4, help="patches per case per epoch (default %(default)s)")
    seg.add_argument("--overlap", type=float, default=0.25, help="sliding-window overlap (default %(default)s)")
    cls = parser.add_argument_group("classification")
    cls.add_argument("--dims", type=int, choices=(2, 3), default=3,
                     help="3 (default): volumes, 2D images as one-slice volumes; 2: 2D images, volumes by their "
                          "middle axial slice")
    cls.add_argument("--input-size", type=int, nargs="+", metavar="N",
                     help="network input in voxels: X Y for --dims 2 (default 128 128), X Y Z for 3 (default 64 64 64)")
    cls.add_argument("--no-class-weights", action="store_true", help="do not weight the loss against class imbalance")
    feat = parser.add_argument_group("classic classifier on image features")
    feat.add_argument("--features", action="store_true", help="train a random forest or SVM on image features")
    feat.add_argument("--classifier", choices=("random-forest", "svm"), default="random-forest")
    card = parser.add_argument_group("model card")
    card.add_argument("--id", help="model id (default: from the package folder name)")
    card.add_argument("--name", help="display name (default: the id)")
    card.add_argument("--model-version", default="1.0.0", help="model version (default %(default)s)")
    card.add_argument("--description", default="", help="one sentence: what the model does")
    card.add_argument("--license", default="unspecified", help="licence of the trained weights")
    card.add_argument("--source", help="provenance (default: 'medai train on DATA')")
    card.add_argument("--modality", default="any", choices=("CT", "MR", "CR", "DX", "US", "PT", "any"))
    card.add_argument("--body-part", help="e.g. head, chest")
    card.add_argument("--sequence", help="MR sequence, e.g. T1w")
    card.add_argument("--labels-json", type=Path,
                      help="segment names, colours and terminology: a JSON list of card label entries, or "
                           "{\"1\": \"brain\"} / {\"1\": {\"name\": ..., \"color\": ..., \"terminology\": ...}}")
    parser.add_argument("--progress", default="bar", choices=("bar", "json", "none"),
                        help="progress display: a bar on the terminal, JSON lines on stdout, or none")
    parser.set_defaults(func=run)
    return parser


def default_id(output: Path) -> str:
    """A valid card id from the package folder's name."""
    text = re.sub(r"[^a-z0-9._-]+", "-", output.name.lower()).strip("-._")
    return text or "trained-model"


def read_labels_json(path: Optional[Path]) -> list[dict[str, Any]]:
    """``--labels-json`` as card label entries (each with an integer ``value``)."""
    if path is None:
        return []
    data = read_json(path, "labels file")
    if isinstance(data, dict):
        data = [{"value": key, **(value if isinstance(value, dict) else {"name": value})}
                for key, value in data.items()]
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise MedAIError("labels must be a list of {\"value\", \"name\", ...} entries or a value -> name mapping", path)
    entries = []
    for entry in data:
        try:
            value = int(entry["value"])
        except (KeyError, TypeError, ValueError):
            raise MedAIError(f"label entry {entry} needs an integer 'value'", path) from None
        if value == 0:
            continue  # background is not a segment
        entries.append({**entry, "value": value})
    return entries


def run(args: argparse.Namespace) -> int:
    from medai.progress import Progress

    progress = Progress(args.progress)
    output = Path(args.output)
    if args.features:
        return _run_features(args, output, progress)
    if args.task is None:
        raise MedAIError("--task segmentation or --task classification is required (or --features)")
    from medai.training.config import PackageInfo, TrainConfig, intensity_spec
    from medai.training.networks import CLASSIFICATION_NETWORKS, SEGMENTATION_NETWORKS

    defaults = DEFAULTS[args.task]
    network = args.network or defaults["network"]
    allowed = SEGMENTATION_NETWORKS if args.task == "segmentation" else CLASSIFICATION_NETWORKS
    if network not in allowed:
        raise MedAIError(f"--network {network} is not a {args.task} network; use one of {', '.join(allowed)}")
    config = TrainConfig(
        task=args.task, data=Path(args.data), output=output, network=network, epochs=args.epochs,
        batch_size=args.batch_size or defaults["batch_size"], lr=args.lr, weight_decay=args.weight_decay,
        seed=args.seed, device=args.device, validation_fraction=args.validation_fraction,
        intensity=intensity_spec(args.intensity or defaults["intensity"],
                                 window=tuple(args.intensity_range) if args.intensity_range else None),
        width=args.width, roi=tuple(args.roi), spacing=tuple(args.spacing) if args.spacing else None,
        samples_per_case=args.samples_per_case, overlap=args.overlap, dims=args.dims,
        input_size=tuple(args.input_size) if args.input_size else None, size=args.size,
        class_weights=not args.no_class_weights)
    model_id = args.id or default_id(output)
    info = PackageInfo(id=model_id, name=args.name or model_id, version=args.model_version,
                       description=args.description, license=args.license,
                       source=args.source or f"medai train on {Path(args.data).name}", modality=args.modality,
                       body_part=args.body_part, sequence=args.sequence, labels=read_labels_json(args.labels_json))
    if args.task == "segmentation":
        from medai.training.segmentation import train_segmentation as train
    else:
        from medai.training.classification import train_classification as train
    package = train(config, info, progress, resume=args.resume, overwrite=args.overwrite)
    summary = json.loads((package / "training.json").read_text())["best_metric"]
    metric = next(k for k in summary if k != "epoch")
    message = f"model package written to {package} (best {metric} {summary[metric]:.4f} at epoch {summary['epoch']})"
    print(message, file=sys.stdout if args.progress != "json" else sys.stderr)
    return 0


def _run_features(args: argparse.Namespace, output: Path, progress) -> int:
    from medai.training.features import train_feature_classifier

    package = train_feature_classifier(Path(args.data), output, classifier=args.classifier, seed=args.seed,
                                       model_id=args.id, progress=progress)
    print(f"model package written to {package}", file=sys.stdout if args.progress != "json" else sys.stderr)
    return 0
