"""Evaluate a brain-extraction-small package against references and against its teacher; time both models.

    python recipes/brain_extraction_small/evaluate.py --package medai/models/packages/brain-extraction-small \
        --out /tmp/evaluation.json [--speed]

Held out (training never saw the image): the ITK example T1 with its independent skull strip (mask = strip > 0).
For context, not held out: Colin27, whose image (with teacher labels) is a training volume; its reference
(ch2bet > 0) was never used. For each volume: the student's Dice/HD95 against the reference, the student's Dice
against the teacher, and the teacher's own Dice/HD95 against the reference.

``--speed``: whole-process wall time of ``medai segment`` on the held-out volume for each model, alternated,
``--repeats`` rounds, same run, on the default engine (auto) and on torch; the median of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

from medai.evaluation.segmentation_metrics import label_metrics
from medai.io import read_volume

ITK_DATA = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
#: name: (image, reference brain mask (> 0), held out from training)
VOLUMES = {
    "itk_t1": (ITK_DATA / "KmeansTest_T1UCharRaw.nii.gz", ITK_DATA / "KmeansTest_T1RawSkullStrip.nii.gz", True),
    "colin27": (Path("/usr/share/mricron/templates/ch2.nii.gz"), Path("/usr/share/mricron/templates/ch2bet.nii.gz"),
                False),
}


def _metrics(prediction: np.ndarray, reference: np.ndarray, spacing_kji) -> dict[str, float]:
    found = label_metrics(prediction > 0, reference > 0, spacing_kji)
    return {key: round(float(found[key]), 4) for key in ("dice", "hd95_mm", "volume_difference_percent")}


def accuracy(package: Path, names: Optional[list[str]] = None) -> dict[str, dict]:
    """Student and teacher metrics on each volume of ``names`` (default: all of :data:`VOLUMES`)."""
    from medai.pipeline.segment import Segmenter

    student = Segmenter(str(package / "card.json"), "cpu", engine="torch")
    teacher = Segmenter("brain-extraction", "cpu", engine="torch")
    results = {}
    for name in names or list(VOLUMES):
        image_path, reference_path, held_out = VOLUMES[name]
        image = read_volume(image_path)
        reference = read_volume(reference_path).array > 0
        spacing = image.spacing[::-1]
        small = student(image).label_map.array
        big = teacher(image).label_map.array
        results[name] = {"held_out": held_out,
                         "student_vs_reference": _metrics(small, reference, spacing),
                         "student_vs_teacher": _metrics(small, big, spacing),
                         "teacher_vs_reference": _metrics(big, reference, spacing)}
    return results


def speed(package: Path, repeats: int = 3, engine: str = "auto") -> dict:
    """Median whole-process seconds of ``medai segment --engine ENGINE`` per model, alternated, and their ratio.

    One untimed run of each model first (it may build the engine's cached ONNX export of the teacher).
    """
    image = VOLUMES["itk_t1"][0]
    models = {"brain-extraction-small": str(package / "card.json"), "brain-extraction": "brain-extraction"}
    seconds: dict[str, list[float]] = {name: [] for name in models}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(-1, repeats):
            for name, model in models.items():
                out = Path(folder) / f"{name}-{round_}.nii.gz"
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "medai.cli.main", "segment", str(image), "-o", str(out),
                                "--model", model, "--engine", engine, "--progress", "none"],
                               check=True, capture_output=True)
                if round_ >= 0:
                    seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    return {"engine": engine, "seconds": {name: [round(v, 2) for v in values] for name, values in seconds.items()},
            "median_seconds": {name: round(v, 2) for name, v in median.items()},
            "small_over_teacher": round(median["brain-extraction-small"] / median["brain-extraction"], 3)}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, required=True, help="the package folder (card.json inside)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write the figures to")
    parser.add_argument("--speed", action="store_true", help="also time both models (whole process)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    report = {"package": str(args.package), "accuracy": accuracy(args.package)}
    if args.speed:
        report["speed"] = [speed(args.package, args.repeats, engine) for engine in ("auto", "torch")]
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
