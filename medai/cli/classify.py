"""``medai classify INPUT... --model ID -o results.csv``: class probabilities of images, one CSV row per input."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from medai.cli.case_errors import case_error_line, report_case_failure
from medai.errors import MedAIError


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("classify", help="classify images with a model",
                                   description="Classify images or DICOM series folders with a model: one CSV row "
                                               "per input with the predicted label and a probability per class.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image file or DICOM series folder")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="results.csv", help="the CSV file to write")
    parser.add_argument("--model", default="image-type", help="model id or path to a model card (default: %(default)s)")
    parser.add_argument("--saliency", type=Path, metavar="DIR",
                        help="also write each input's saliency map (0..1, on the input's grid) into DIR")
    parser.add_argument("--mask", nargs="+", metavar="MASK",
                        help="for image-feature models: the segment of each input (one mask per input, same order)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--engine", default="auto", choices=("auto", "torch", "onnx", "openvino"),
                        help="inference engine (default: %(default)s)")
    parser.add_argument("--progress", default="bar", choices=("bar", "json", "none"),
                        help="progress display: a bar on the terminal, JSON lines on stdout, or none")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    parser.set_defaults(func=run)
    return parser


def saliency_paths(inputs: list[str], folder: Path) -> list[Path]:
    """Where each input's saliency map goes: ``DIR/<input name>_saliency`` + ``.nii.gz`` (NIfTI input) or ``.nrrd``.

    Input names are those ``medai segment`` gives its outputs (extension dropped, repeated names numbered).
    """
    from medai.cli.segment import output_paths

    return [folder / f"{stem.name}_saliency{'.nii.gz' if item.lower().endswith(('.nii', '.nii.gz')) else '.nrrd'}"
            for item, stem in zip(inputs, output_paths(inputs, str(folder), ""))]


def write_csv(path: Path, classes: list[str], rows: list[dict]) -> None:
    """The results CSV (input, label, p_<class>...), written atomically."""
    from medai.io.atomic import write_atomically

    def write(target: Path) -> None:
        with open(target, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["input", "label"] + [f"p_{name}" for name in classes])
            for row in rows:
                writer.writerow([row["input"], row["label"]] + [f"{row['probabilities'][name]:.6f}" for name in classes])

    write_atomically(path, write)


def _check_outputs(args: argparse.Namespace) -> None:
    if args.output.is_dir():
        raise MedAIError("is a folder; give a .csv file name to write the results to", args.output)
    if args.output.exists() and not args.overwrite:
        raise MedAIError("already exists; use --overwrite to replace it", args.output)
    if not args.output.parent.is_dir():
        raise MedAIError("the folder to write into does not exist", args.output.parent)
    if args.saliency is not None and args.saliency.exists() and not args.saliency.is_dir():
        raise MedAIError("is a file; --saliency needs a folder", args.saliency)
    if args.mask is not None and len(args.mask) != len(args.inputs):
        raise MedAIError(f"--mask gives {len(args.mask)} masks for {len(args.inputs)} inputs; give one per input")


def run(args: argparse.Namespace) -> int:
    from medai.io import read_volume, write_volume
    from medai.pipeline.classify import Classifier
    from medai.progress import Progress

    _check_outputs(args)
    classifier = Classifier(args.model, args.device, args.engine)
    maps = saliency_paths(args.inputs, args.saliency) if args.saliency is not None else [None] * len(args.inputs)
    masks = args.mask or [None] * len(args.inputs)
    progress = Progress(args.progress)
    single_line = len(args.inputs) == 1 and args.progress == "bar"
    rows: list[dict] = []
    progress.start(len(args.inputs))
    for index, (item, map_path, mask_path) in enumerate(zip(args.inputs, maps, masks)):
        progress.begin_case(index, item)
        try:
            if map_path is not None and map_path.exists() and not args.overwrite:
                raise MedAIError("already exists; use --overwrite to replace it", map_path)
            progress.update("read", 0.0)
            volume = read_volume(item)
            mask = read_volume(mask_path) if mask_path else None
            result = classifier(volume, saliency=map_path is not None, mask=mask, source=item,
                                progress=lambda stage, f: progress.update(stage, 0.05 + 0.9 * f))
            for warning in result.warnings:
                print(f"medai: warning: {item}: {warning}", file=sys.stderr)
            if map_path is not None and result.saliency is not None:
                progress.update("write", 0.96)
                map_path.parent.mkdir(parents=True, exist_ok=True)
                write_volume(result.saliency, map_path)
            rows.append({"input": item, "label": result.label, "probabilities": result.probabilities})
            progress.case_done(str(map_path or args.output), label=result.label,
                               probabilities={k: round(v, 6) for k, v in result.probabilities.items()})
            continue
        except Exception as error:  # noqa: BLE001 - a batch reports every case and carries on
            report_case_failure(progress, case_error_line(error, item, args.debug), single_line)
    if rows:
        write_csv(args.output, classifier.classes, rows)
    summary = progress.summary()
    if summary["failed"] and len(args.inputs) == 1:
        print(f"medai: error: {summary['failures'][0]['error']}", file=sys.stderr)
    return 1 if summary["failed"] else 0

