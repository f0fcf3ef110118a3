"""Cut the real images of ``sources.py`` into the 2D training slices of the ``image-type`` model.

    python recipes/image_type/build_dataset.py OUT [--slices 24] [--copies 8] [--seed 0] [--sources NAME...]

Writes ``OUT/slices/<source>_<n>.nii.gz`` (one slice each, float32, original values: HU for CT), ``OUT/datalist.json``
(``{"classes": [...], "training": [{"image": ..., "label": ..., "volume": source}]}``, paths relative to OUT) and
``OUT/volumes.json`` (source -> class, the original image's provenance and licence).

Slices are cut by :mod:`medai.pipeline.classify_input`, the code that feeds the model at inference: canonical RAS
orientation, axial slices from the middle 80 % of a volume (up to ``--slices``), every slice of a 2D image. Each
slice file gets an axial RAS geometry of 1 mm pixels, so that the trainer's canonical orientation leaves it as cut.

Augmentation, written into the files (the trainer sees them as they are): random crops (half of the copies: zoomed
views with little air, so that air is not the only sign of CT) and flips of each slice; MR values
rescaled so that their 99th percentile lands anywhere in 150..3000 (MR intensities have no unit; CT keeps its
Hounsfield units, which is what tells CT from MR); a 2D image is written ``--copies`` times with fresh flips and
scales, so that a single slice weighs about as much as a few slices of a volume.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sources import CLASSES, SOURCES, by_name  # noqa: E402

from medai.io import write_volume  # noqa: E402
from medai.pipeline.classify_input import THIN, canonical_image  # noqa: E402
from medai.volume import Volume  # noqa: E402

#: Share of augmented copies that are a random crop (a zoomed view with little or no air around the body, like
#: pydicom's CT_small), and the crop's side as a fraction of the slice's.
CROP_PROBABILITY = 0.6
CROP_SIDE = (0.2, 0.8)
#: LPS direction whose voxel axes point R, A, S: canonical RAS reorientation leaves such a slice as it is.
AXIAL_RAS = np.diag([-1.0, -1.0, 1.0])


def augmented(slice_xy: np.ndarray, modality: str, rng: np.random.Generator, plain: bool) -> np.ndarray:
    """One training copy of a slice: as cut when ``plain``, else randomly cropped, flipped and (MR) rescaled."""
    out = slice_xy.astype(np.float32)
    if plain:
        return out
    if rng.random() < CROP_PROBABILITY:
        sides = [max(8, int(round(n * rng.uniform(*CROP_SIDE)))) if n > 16 else n for n in out.shape]
        starts = [int(rng.integers(0, n - side + 1)) for n, side in zip(out.shape, sides)]
        out = out[starts[0]:starts[0] + sides[0], starts[1]:starts[1] + sides[1]]
    for axis in (0, 1):
        if rng.random() < 0.5:
            out = np.flip(out, axis)
    if modality == "MR":
        high = float(np.percentile(out, 99)) or 1.0
        out = out * (np.exp(rng.uniform(np.log(150), np.log(3000))) / high)
    return np.ascontiguousarray(out)


def slice_volume(slice_xy: np.ndarray) -> Volume:
    """A one-slice volume (K,J,I = 1, Y, X) on an axial RAS grid of 1 mm pixels."""
    return Volume(slice_xy.T[None], np.ones(3), np.zeros(3), AXIAL_RAS)


def build(out: Path, slices: int = 24, copies: int = 8, seed: int = 0, names: Optional[list[str]] = None) -> dict:
    """Write the slices, datalist.json and volumes.json into ``out`` (every source, or those ``names``)."""
    rng = np.random.default_rng(seed)
    (out / "slices").mkdir(parents=True, exist_ok=True)
    training, volumes = [], {}
    for source in SOURCES if names is None else [by_name(name) for name in names]:
        image = canonical_image(source.load(), "RAS")
        thin = image.shape[image.slice_axis] <= THIN
        cut = image.slices(image.slice_indices(slices))
        repeats = copies if thin else 1
        count = 0
        for piece in cut:
            for copy in range(repeats):
                name = f"slices/{source.name}_{count:03d}.nii.gz"
                write_volume(slice_volume(augmented(piece, source.modality, rng, plain=copy == 0 and thin)), out / name)
                training.append({"image": name, "label": source.label, "volume": source.name})
                count += 1
        volumes[source.name] = {"label": source.label, "slices": count, "origin": source.origin,
                                "licence": source.licence}
        print(f"{source.name:12s} {source.label:8s} {count:3d} slices", flush=True)
    datalist = {"classes": CLASSES, "training": training}
    (out / "datalist.json").write_text(json.dumps(datalist, indent=1))
    (out / "volumes.json").write_text(json.dumps(volumes, indent=1))
    return datalist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--slices", type=int, default=24, help="slices per volume (default: %(default)s)")
    parser.add_argument("--copies", type=int, default=8, help="copies of each slice of a 2D image (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", nargs="+", metavar="NAME", help="only these sources (default: all)")
    args = parser.parse_args()
    build(args.out, args.slices, args.copies, args.seed, args.sources)


if __name__ == "__main__":
    main()
