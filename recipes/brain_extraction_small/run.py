"""The brain-extraction-small recipe end to end: data, ``medai train``, the shipped package, evaluation.

    python recipes/brain_extraction_small/run.py --work /tmp/brain-small            # the shipped model (full)
    python recipes/brain_extraction_small/run.py --work /tmp/x --profile short      # CI: a few iterations

Steps:

1. ``build_data.py``: teacher masks of the built-in ``brain-extraction`` model on the training volumes and
   augmented whole-field-of-view samples of ``size``^3 voxels (MSD datalist ``WORK/data/dataset.json``);
2. ``medai train --task segmentation`` on that datalist (command recorded in ``WORK/train_command.json``);
   its network sees whole ``size``^3 views (``--roi`` = the sample size, one sample per case and epoch);
3. the package: ``medai train`` writes a sliding-window card at the images' own resolution; the samples are whole
   views resized to ``size``^3, so the card is switched to the ``whole`` inference mode at that size (what every
   sample was), with the teacher's clean-up (threshold 0.5, largest component, hole filling). The networks are
   ``medai train``'s files, unchanged. card.json, network.ts, network.onnx, training.json and train.log are copied
   into ``--package`` (default: ``WORK/package``);
4. ``evaluate.py`` on the held-out volume(s) (full profile only; the short profile's test runs its own checks).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHIPPED = REPO / "medai" / "models" / "packages" / "brain-extraction-small"
PACKAGE_FILES = ("card.json", "network.ts", "network.onnx", "training.json", "train.log")

PROFILES = {
    # the shipped model: 31 min on one thread of a busy 2-core machine
    "full": {"data": ["--size", "64", "--copies", "24", "--seed", "0"],
             "train": ["--network", "unet", "--width", "8", "--epochs", "40", "--batch-size", "2", "--lr", "0.002"]},
    # CI: small downsampled sources, two epochs
    "short": {"data": ["--size", "32", "--copies", "2", "--seed", "0", "--cases", "brain1,brain2",
                       "--downsample-mm", "3"],
              "train": ["--network", "unet", "--width", "8", "--epochs", "2", "--batch-size", "2"]},
}

DESCRIPTION = ("Segments the brain (skull stripping) in a T1-weighted head MRI: a small 3D UNet on the whole image "
               "resized to {size}^3 voxels, distilled from the brain-extraction model (deepbet).")


def _size(profile: str) -> int:
    data = PROFILES[profile]["data"]
    return int(data[data.index("--size") + 1])


def labels_json(folder: Path) -> Path:
    """The built-in card's labels (Brain: name, colour, terminology) as a ``--labels-json`` file."""
    from medai.models import get_card

    path = folder / "labels.json"
    path.write_text(json.dumps(get_card("brain-extraction").data["labels"], indent=1))
    return path


def train_command(data: Path, output: Path, profile: str, labels: Path) -> list[str]:
    """The exact ``medai train`` command of ``profile``."""
    size = str(_size(profile))
    return [sys.executable, "-m", "medai.cli.main", "train", str(data), "-o", str(output),
            "--task", "segmentation", *PROFILES[profile]["train"],
            "--roi", size, size, size, "--samples-per-case", "1", "--seed", "0",
            "--intensity", "quantile-zscore",
            "--id", "brain-extraction-small", "--name", "Brain extraction, small (distilled from deepbet)",
            "--model-version", "1.0.0", "--description", DESCRIPTION.format(size=size),
            "--license", "MIT (trained on outputs of deepbet 1.0.2, MIT; see recipes/brain_extraction_small/README.md)",
            "--source", "MedAI recipes/brain_extraction_small: medai train on real T1 head MRIs labelled by the "
                        "brain-extraction model (deepbet 1.0.2)",
            "--modality", "MR", "--sequence", "T1w", "--body-part", "head", "--labels-json", str(labels),
            "--progress", "none", "--overwrite"]


def finish_package(trained: Path, package: Path, size: int) -> Path:
    """Copy ``trained``'s package files into ``package`` with the card switched to whole-view inference."""
    from medai.io.atomic import write_atomically
    from medai.models.card import card_from_dict

    card = json.loads((trained / "card.json").read_text())
    card["inference"] = {"mode": "whole", "input_size": [size] * 3, "resize_mode": "trilinear", "output": "softmax",
                         "foreground_channel": 1}
    card["postprocessing"] = {"threshold": 0.5, "largest_component": True, "fill_holes": True}
    package.mkdir(parents=True, exist_ok=True)
    for name in PACKAGE_FILES[1:]:
        shutil.copyfile(trained / name, package / name)
    card_from_dict(card, folder=package, origin=package / "card.json")  # schema and weight paths
    write_atomically(package / "card.json", lambda p: p.write_text(json.dumps(card, indent=2) + "\n"))
    return package


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="working folder (data, training output)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--package", type=Path, help=f"where the package goes (default: WORK/package; the shipped "
                                                     f"one is {SHIPPED.relative_to(REPO)})")
    parser.add_argument("--skip-data", action="store_true", help="reuse WORK/data")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if not args.skip_data:
        subprocess.run([sys.executable, str(HERE / "build_data.py"), "--out", str(data), *PROFILES[args.profile]["data"]],
                       check=True)
    command = train_command(data / "dataset.json", work / "trained", args.profile, labels_json(work))
    (work / "train_command.json").write_text(json.dumps(command, indent=1))
    print(" ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=REPO)
    package = finish_package(work / "trained", args.package or work / "package", _size(args.profile))
    print(f"package: {package}")
    if args.profile == "full":
        subprocess.run([sys.executable, str(HERE / "evaluate.py"), "--package", str(package),
                        "--out", str(work / "evaluation.json")], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
