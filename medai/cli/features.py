"""``medai features IMAGE MASK -o features.csv`` (or ``medai features DATALIST.json -o ...``): image features.

One CSV row per segment: the image, the mask, the mask value, the class when the datalist gives one, then every
feature of :data:`medai.features.FEATURE_NAMES` (pyradiomics' names and definitions). In a batch a case that
fails is reported on one line and the others complete; the CSV holds the cases that succeeded and appears
only once complete.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from medai.cli.case_errors import case_error_line, report_case_failure
from medai.errors import MedAIError


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "features", help="shape, first-order and texture (GLCM) features of segments, as a CSV",
        description="Compute pyradiomics-compatible image features (14 shape, 18 first-order, 24 GLCM) of a "
                    "segment: IMAGE MASK, or a feature datalist JSON ({\"training\": [{\"image\", \"mask\", "
                    "[\"mask_label\"], [\"label\"]}], \"validation\": [...]}, paths relative to the JSON). The mask "
                    "must be on the image's grid.")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE MASK | DATALIST", help="an image and its mask, or a datalist")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="CSV", help="the CSV to write")
    parser.add_argument("--label", type=int, default=1, help="mask value of the segment (default: %(default)s)")
    parser.add_argument("--bin-width", type=float, default=25.0, help="grey-level bin width (default: %(default)s)")
    parser.add_argument("--bin-count", type=int, help="a fixed number of grey-level bins instead of a bin width")
    parser.add_argument("--voxel-array-shift", type=float, default=0.0,
                        help="added to intensities for Energy, TotalEnergy, RootMeanSquared (default: %(default)s)")
    parser.add_argument("--progress", default="bar", choices=("bar", "json", "none"),
                        help="progress display: a bar on the terminal, JSON lines on stdout, or none")
    parser.add_argument("--overwrite", action="store_true", help="replace the CSV if it exists")
    parser.set_defaults(func=run)
    return parser


def cases_from(inputs: list[str]):
    """The cases named on the command line: IMAGE MASK, or one datalist JSON."""
    from medai.features.cases import FeatureCase, read_feature_datalist

    if len(inputs) == 1 and inputs[0].lower().endswith(".json"):
        datalist = read_feature_datalist(inputs[0], need_labels=False)
        return datalist.training + datalist.validation
    if len(inputs) == 2:
        return [FeatureCase(Path(inputs[0]), Path(inputs[1]))]
    raise MedAIError("give IMAGE MASK, or one datalist .json")


def run(args: argparse.Namespace) -> int:
    from medai.features import FEATURE_NAMES, FeatureSettings
    from medai.features.cases import VolumeCache, case_features
    from medai.io.atomic import write_atomically
    from medai.progress import Progress

    output: Path = args.output
    if output.exists() and not args.overwrite:
        raise MedAIError("already exists; use --overwrite to replace it", output)
    if not output.parent.is_dir():
        raise MedAIError("the folder to write into does not exist", output.parent)
    settings = FeatureSettings(binWidth=args.bin_width, binCount=args.bin_count,
                               voxelArrayShift=args.voxel_array_shift, label=args.label)
    cases = cases_from(args.inputs)
    with_class = any(case.label is not None for case in cases)
    progress = Progress(args.progress)
    single_line = len(cases) == 1 and args.progress == "bar"
    cache = VolumeCache()
    rows = []
    progress.start(len(cases))
    for index, case in enumerate(cases):
        progress.begin_case(index, case.name)
        try:
            progress.update("features", 0.1)
            values = case_features(case, settings, cache)
            row = {"image": str(case.image), "mask": str(case.mask),
                   "mask_label": case.mask_label if case.mask_label is not None else settings.label}
            if with_class:
                row["class"] = case.label or ""
            rows.append({**row, **{name: repr(values[name]) for name in FEATURE_NAMES}})
            progress.case_done(str(output))
            continue
        except Exception as error:  # noqa: BLE001 - a batch reports every case and carries on
            report_case_failure(progress, case_error_line(error, case.mask, args.debug), single_line)
    if rows:
        columns = list(rows[0])

        def write(path: Path) -> None:
            with open(path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)

        write_atomically(output, write)
    summary = progress.summary()
    if summary["failed"] and len(cases) == 1:
        print(f"medai: error: {summary['failures'][0]['error']}", file=sys.stderr)
    return 1 if summary["failed"] else 0
