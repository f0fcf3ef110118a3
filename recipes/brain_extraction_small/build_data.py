"""Build the distillation data set for ``brain-extraction-small``: teacher masks, then augmented training samples.

Teacher: MedAI's built-in ``brain-extraction`` model (deepbet 1.0.2, MIT) segments each training volume on its own
grid. Each training sample is what the small network sees at inference in the card's ``whole`` mode: the volume's
whole field of view, in closest-canonical RAS axes, resampled to ``size``^3 voxels. Augmented copies move that view
(rotation, field-of-view scale and shift), mirror it left-right, resample the source through thick slices and
change its intensities (gamma, smooth bias field, noise); copy 0 of each case is the plain view and serves as the
validation sample. Writes an MSD-style datalist ``dataset.json`` (paths relative to it) and ``manifest.json``
(sources with SHA256, teacher, options, per-sample augmentation).

The held-out test volume (the ITK example T1 and its independent skull strip) is not read here at all.

    python recipes/brain_extraction_small/build_data.py --out /tmp/brain-small-data --size 64 --copies 24
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from medai.io import read_volume, write_volume
from medai.models.weights import sha256_of
from medai.pipeline.orientation import canonical_reorientation
from medai.resample import grid_like, resample_to_grid
from medai.volume import Volume

REPO = Path(__file__).resolve().parents[2]

#: Real T1-weighted head MRIs with skull (see the README for provenance and licences).
TRAINING_CASES = {
    "colin27": Path("/usr/share/mricron/templates/ch2.nii.gz"),
    "brain1": REPO / ".data" / "pyradiomics" / "brain1_image.nrrd",
    "brain2": REPO / ".data" / "pyradiomics" / "brain2_image.nrrd",
}


@dataclass
class Augmentation:
    """One random view of a training volume (all neutral for copy 0)."""

    rotation_deg: float = 0.0
    rotation_axis: tuple = (0.0, 0.0, 1.0)
    fov_scale: tuple = (1.0, 1.0, 1.0)
    shift: tuple = (0.0, 0.0, 0.0)  # fraction of the field of view, per canonical axis
    mirror: bool = False  # left-right
    thick_axis: Optional[int] = None  # canonical axis resampled through thick slices
    thick_mm: float = 0.0
    gamma: float = 1.0
    bias: tuple = (0.0, 0.0, 0.0)  # linear log-bias gradient per canonical axis
    noise: float = 0.0  # Gaussian noise, fraction of the 99.5th percentile


def random_augmentation(rng: np.random.Generator) -> Augmentation:
    """Draw one augmentation; the ranges are documented in the README."""
    axis = rng.normal(size=3)
    thick = rng.random() < 0.3
    return Augmentation(
        rotation_deg=float(rng.uniform(-15, 15)),
        rotation_axis=tuple(float(a) for a in axis / np.linalg.norm(axis)),
        fov_scale=tuple(float(s) for s in rng.uniform(0.85, 1.35, 3)),
        shift=tuple(float(s) for s in rng.uniform(-0.08, 0.08, 3)),
        mirror=bool(rng.random() < 0.5),
        thick_axis=int(rng.integers(3)) if thick else None,
        thick_mm=float(rng.uniform(4.0, 7.0)) if thick else 0.0,
        gamma=float(np.exp(rng.uniform(np.log(0.7), np.log(1.5)))),
        bias=tuple(float(b) for b in rng.uniform(-0.3, 0.3, 3)),
        noise=float(rng.uniform(0.0, 0.03)) if rng.random() < 0.5 else 0.0,
    )


def _rotation(axis, degrees: float) -> np.ndarray:
    """Rotation matrix about unit ``axis`` by ``degrees`` (Rodrigues)."""
    x, y, z = axis
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    a = np.radians(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def canonical_frame(volume: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre LPS, direction with columns along the closest-canonical RAS voxel axes, extent mm per such axis)."""
    turn = canonical_reorientation(volume, "RAS")
    size = np.array(volume.size_ijk, float)
    centre = volume.lps_points([(size - 1) / 2])[0]
    direction = np.stack([volume.direction[:, p] * (-1 if f else 1) for p, f in zip(turn.perm, turn.flip)], axis=1)
    extent = np.array([size[p] * volume.spacing[p] for p in turn.perm])
    return centre, direction, extent


def view_grid(volume: Volume, size: int, aug: Augmentation) -> Volume:
    """A ``size``^3 grid over ``volume``'s field of view in canonical axes, moved as ``aug`` says."""
    centre, direction, extent = canonical_frame(volume)
    extent = extent * np.asarray(aug.fov_scale)
    centre = centre + direction @ (np.asarray(aug.shift) * extent)
    direction = _rotation(aug.rotation_axis, aug.rotation_deg) @ direction
    spacing = extent / size
    origin = centre - direction @ (extent / 2 - spacing / 2)
    return Volume(np.zeros((size, size, size), np.uint8), spacing, origin, direction)


def _through_thick_slices(volume: Volume, axis: int, thickness: float) -> Volume:
    """``volume`` resampled to ``thickness`` mm along its canonical ``axis`` (a thick-slice acquisition)."""
    _, direction, _ = canonical_frame(volume)
    spacing = np.array([volume.spacing[p] for p in canonical_reorientation(volume, "RAS").perm])
    spacing[axis] = max(spacing[axis], thickness)
    return resample_to_grid(volume, grid_like(volume, spacing=spacing, direction=direction), "linear")


def _intensity(array: np.ndarray, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """Gamma, a smooth multiplicative bias field and noise on a (K,J,I) canonical view."""
    top = float(np.quantile(array, 0.995)) or 1.0
    x = np.clip(array / top, 0, None) ** aug.gamma
    k, j, i = (np.linspace(-0.5, 0.5, n) for n in array.shape)
    log_bias = aug.bias[0] * i[None, None, :] + aug.bias[1] * j[None, :, None] + aug.bias[2] * k[:, None, None]
    x = x * np.exp(log_bias)
    if aug.noise:
        x = x + rng.normal(0.0, aug.noise, x.shape)
    return (np.clip(x, 0, None) * top).astype(np.float32)


def sample(volume: Volume, mask: Volume, size: int, aug: Augmentation, rng: np.random.Generator) -> tuple[Volume, Volume]:
    """One (image, label) training pair on ``view_grid``; labels are the teacher mask, linearly resampled > 0.5."""
    grid = view_grid(volume, size, aug)
    source = volume
    if aug.thick_axis is not None:
        source = _through_thick_slices(volume, aug.thick_axis, aug.thick_mm)
    image = resample_to_grid(source, grid, "linear")
    label = resample_to_grid(mask.with_array(mask.array.astype(np.float32)), grid, "linear")
    img, lab = image.array, (label.array > 0.5).astype(np.uint8)
    if aug.mirror:  # canonical I axis is left-right; the geometry stays, the anatomy is mirrored
        img, lab = img[:, :, ::-1], lab[:, :, ::-1]
    img = _intensity(img, aug, rng)
    return grid.with_array(np.ascontiguousarray(img)), grid.with_array(np.ascontiguousarray(lab))


def downsampled(volume: Volume, spacing_mm: float) -> Volume:
    """``volume`` on a grid no finer than ``spacing_mm`` (for the short CI run)."""
    spacing = np.maximum(volume.spacing, spacing_mm)
    return resample_to_grid(volume, grid_like(volume, spacing=spacing), "linear")


def teacher_masks(cases: dict[str, Volume], folder: Path) -> dict[str, Volume]:
    """Brain masks of the built-in ``brain-extraction`` model, written to ``folder`` (and reused if there)."""
    from medai.pipeline.segment import Segmenter

    segmenter = None
    masks = {}
    for name, volume in cases.items():
        path = folder / f"{name}.nii.gz"
        if path.exists():
            masks[name] = read_volume(path)
            continue
        segmenter = segmenter or Segmenter("brain-extraction", "cpu")
        masks[name] = segmenter(volume).label_map
        write_volume(masks[name], path)
    return masks


def build(out: Path, size: int, copies: int, seed: int, case_names: list[str], downsample_mm: float = 0.0) -> dict:
    """Write the data set into ``out``; returns the manifest."""
    from medai.models import get_card

    rng = np.random.default_rng(seed)
    for sub in ("imagesTr", "labelsTr", "teacher"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    volumes = {name: read_volume(TRAINING_CASES[name]) for name in case_names}
    if downsample_mm:
        volumes = {name: downsampled(v, downsample_mm) for name, v in volumes.items()}
    masks = teacher_masks(volumes, out / "teacher")
    training, validation, samples = [], [], []
    for name in case_names:
        for copy in range(copies + 1):
            aug = Augmentation() if copy == 0 else random_augmentation(rng)
            image, label = sample(volumes[name], masks[name], size, aug, rng)
            stem = f"{name}_{copy:03d}"
            write_volume(image, out / "imagesTr" / f"{stem}.nii.gz")
            write_volume(label, out / "labelsTr" / f"{stem}.nii.gz")
            item = {"image": f"imagesTr/{stem}.nii.gz", "label": f"labelsTr/{stem}.nii.gz"}
            (validation if copy == 0 else training).append(item)
            samples.append({"sample": stem, "brain_fraction": round(float(label.array.mean()), 4), **aug.__dict__})
    datalist = {"name": "brain-extraction-small distillation", "labels": {"0": "background", "1": "Brain"},
                "modality": {"0": "T1w"}, "training": training, "validation": validation}
    (out / "dataset.json").write_text(json.dumps(datalist, indent=1))
    teacher = get_card("brain-extraction")
    manifest = {
        "sources": {name: {"path": str(TRAINING_CASES[name]), "sha256": sha256_of(TRAINING_CASES[name]),
                           "teacher_brain_fraction": round(float(masks[name].array.mean()), 4)} for name in case_names},
        "teacher": {"model": teacher.id, "version": teacher.version,
                    "weights_sha256": {role: w["sha256"] for role, w in teacher.weights.items()}},
        "options": {"size": size, "copies": copies, "seed": seed, "cases": case_names, "downsample_mm": downsample_mm},
        "samples": samples,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the data set into")
    parser.add_argument("--size", type=int, default=96, help="voxels per axis of each sample (the card's input_size)")
    parser.add_argument("--copies", type=int, default=24, help="augmented copies per training volume")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default=",".join(TRAINING_CASES), help="comma-separated training cases")
    parser.add_argument("--downsample-mm", type=float, default=0.0, help="coarsen the sources first (CI short run)")
    args = parser.parse_args(argv)
    manifest = build(args.out, args.size, args.copies, args.seed, args.cases.split(","), args.downsample_mm)
    print(f"{len(manifest['samples'])} samples in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
