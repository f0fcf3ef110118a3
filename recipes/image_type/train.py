"""Train the built-in ``image-type`` model with ``medai train`` on the slices of ``build_dataset.py``.

    python recipes/image_type/train.py DATA PACKAGE [--epochs 16] [--install]

DATA is a folder written by ``build_dataset.py`` (built first if it has no datalist.json). ``--install`` copies the
package's runtime files (card, TorchScript, ONNX, training record and log) into medai/models/packages/image-type/.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INSTALLED = ROOT / "medai" / "models" / "packages" / "image-type"
#: The package files the model runs from (the training checkpoint stays behind).
PACKAGE_FILES = ("card.json", "network.ts", "network.onnx", "training.json", "train.log")
EPOCHS = 16

#: ``medai train`` options: a small 2D DenseNet on 64x64 slices; intensities mapped by a fixed range (HU-style),
#: not per image, so CT's Hounsfield units (air at -1000, fat at -100) stay what tells CT from MR. The range maps
#: to 0..10 rather than 0..1 so that medai train's intensity-shift augmentation (+-0.1) moves values by +-41 HU,
#: not +-410 HU, which would blur fat into MR background.
TRAIN_OPTIONS = [
    "--task", "classification", "--dims", "2", "--input-size", "64", "64",
    "--network", "densenet", "--size", "small", "--width", "16", "--batch-size", "16",
    "--intensity", "range", "--intensity-range", "-1024", "3072", "0", "10",
    "--id", "image-type", "--name", "Image type (modality and region)", "--model-version", "1.0.0",
    "--modality", "any",
    "--description", "Recognises the modality (CT or MR) and the body region (head or body) of a 2D image or a 3D "
                     "volume from its pixels alone; a small 2D DenseNet on 64x64 slices, volumes by 16 axial slices.",
    "--license", "GPL-2.0 (trained on the GPL-2 InVesalius head CT among BSD-3, MIT and Apache-2.0 images)",
    "--source", "MedAI recipes/image_type (medai train on real CT and MR images; see its README)",
]


def train(data: Path, package: Path, epochs: int = EPOCHS, seed: int = 0, progress: str = "bar") -> Path:
    """Run ``medai train`` on ``data``/datalist.json into ``package``; returns the package folder."""
    command = [sys.executable, "-m", "medai.cli.main", "train", str(data / "datalist.json"), "-o", str(package),
               *TRAIN_OPTIONS, "--epochs", str(epochs), "--seed", str(seed), "--progress", progress, "--overwrite"]
    subprocess.run(command, check=True, cwd=ROOT)
    return package


def install(package: Path) -> Path:
    """Copy the package's runtime files into medai/models/packages/image-type/."""
    INSTALLED.mkdir(parents=True, exist_ok=True)
    for name in PACKAGE_FILES:
        shutil.copy2(package / name, INSTALLED / name)
    return INSTALLED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("package", type=Path)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--install", action="store_true", help="copy the package into medai/models/packages/")
    args = parser.parse_args()
    if not (args.data / "datalist.json").is_file():
        sys.path.insert(0, str(HERE))
        from build_dataset import build

        build(args.data)
    train(args.data, args.package, args.epochs, args.seed)
    if args.install:
        print(f"installed in {install(args.package)}")


if __name__ == "__main__":
    main()
