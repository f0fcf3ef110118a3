"""``medai demo``: the main job on the embedded default -- brain extraction of the Colin27 T1 MRI.

Segments Colin27 (Debian's mricron-data, installed by scripts/setup.sh), writes a ``.seg.nrrd`` that
Slicer opens, and prints the Dice against the reference skull-strip (``ch2bet > 0``) and the time taken.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from medai.errors import MedAIError

COLIN27 = Path("/usr/share/mricron/templates/ch2.nii.gz")
COLIN27_REFERENCE = Path("/usr/share/mricron/templates/ch2bet.nii.gz")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("demo", help="segment the brain of the Colin27 T1 MRI and score it")
    parser.add_argument("-o", "--output", default="out/colin27_brain.seg.nrrd", help="output file (default: %(default)s)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from medai.cli.segment import write_result
    from medai.io import read_volume
    from medai.metrics import dice
    from medai.pipeline import Segmenter
    from medai.pipeline.modality_check import image_type_check

    for path in (COLIN27, COLIN27_REFERENCE):
        if not path.exists():
            raise MedAIError("is missing; run scripts/setup.sh (it installs Debian's mricron-data)", path)
    start = time.perf_counter()
    volume = read_volume(COLIN27)
    result = Segmenter("brain-extraction", args.device, modality_check=image_type_check())(volume, source=COLIN27)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_result(result, output)
    seconds = time.perf_counter() - start
    reference = read_volume(COLIN27_REFERENCE)
    score = dice(result.label_map.array > 0, reference.array > 0)
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items() if k != "total")
    print(f"input      {COLIN27} ({'x'.join(map(str, volume.size_ijk))} voxels, {volume.spacing.tolist()} mm)")
    print(f"model      {result.label_map.metadata['model']} {result.label_map.metadata['model_version']}")
    print(f"output     {output}")
    print(f"Dice       {score:.4f} against {COLIN27_REFERENCE.name} > 0")
    print(f"time       {seconds:.2f} s (read + segment + write; stages: {stages})")
    return 0
