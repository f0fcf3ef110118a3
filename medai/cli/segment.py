"""``medai segment INPUT... -o OUTPUT --model ID``: segment images or DICOM series, one or a batch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medai.cli.case_errors import case_error_line, report_case_failure
from medai.errors import MedAIError

OUTPUT_FORMATS = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".mha")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("segment", help="segment images with a model",
                                   description="Segment images or DICOM series folders with a model.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image file or DICOM series folder")
    parser.add_argument("-o", "--output", required=True,
                        help="output file for one input (.seg.nrrd, .nii.gz, .nrrd), or a folder for several")
    parser.add_argument("--model", default="brain-extraction", help="model id or path to a model card (default: %(default)s)")
    parser.add_argument("--channel", action="append", default=[], metavar="IMAGE",
                        help="another volume of the same case, for models that take several (e.g. T2, FLAIR): "
                             "repeat in the order `medai models show MODEL` lists its channels; INPUT is the first "
                             "and sets the grid of the result; the others are aligned to it in physical space")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--engine", default="auto", choices=("auto", "torch", "onnx", "openvino"),
                        help="inference engine; auto: torch on a GPU; on the CPU OpenVINO (else ONNX Runtime) for "
                             "sliding-window models, torch for models that run once per image (default: %(default)s)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "reduced"),
                        help="reduced: bfloat16 on torch, the CPU's default precision on OpenVINO; label maps may "
                             "differ slightly from fp32 (default: %(default)s)")
    parser.add_argument("--format", default=".seg.nrrd", choices=OUTPUT_FORMATS,
                        help="file format of outputs written into a folder (default: %(default)s)")
    parser.add_argument("--progress", default="bar", choices=("bar", "json", "none"),
                        help="progress display: a bar on the terminal, JSON lines on stdout, or none")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    parser.add_argument("--statistics", type=Path, metavar="STATS.csv",
                        help="also write each segment's volume (ml) and the image's mean, std, min, max and median "
                             "under it: one row per case and segment")
    derived = parser.add_argument_group("DICOM and mesh outputs (for a batch, each of these is a folder)")
    derived.add_argument("--dicom-seg", type=Path, metavar="SEG.dcm", help="also write a DICOM SEG (DICOM input only)")
    derived.add_argument("--rtstruct", type=Path, metavar="RT.dcm", help="also write a DICOM RTSTRUCT (DICOM input only)")
    derived.add_argument("--mesh", type=Path, metavar="DIR", help="also write a surface mesh per segment into DIR")
    derived.add_argument("--mesh-format", default="stl", choices=("stl", "obj"))
    derived.add_argument("--mesh-coordinates", default="LPS", choices=("LPS", "RAS"))
    derived.add_argument("--mesh-merged", action="store_true", help="one mesh file holding every segment")
    derived.add_argument("--deidentify", type=Path, metavar="DIR",
                         help="also write a de-identified copy of the source series and of the DICOM outputs into DIR")
    parser.set_defaults(func=run)
    return parser


def output_paths(inputs: list[str], output: str, fmt: str) -> list[Path]:
    """Where each input's result goes: ``output`` itself for one input named like a file, else a folder."""
    out = Path(output)
    if len(inputs) == 1 and out.name.lower().endswith(OUTPUT_FORMATS) and not out.is_dir():
        return [out]
    if out.exists() and not out.is_dir():
        raise MedAIError("is a file; several inputs need an output folder", out)
    names = []
    for item in inputs:
        name = Path(item.rstrip("/\\")).name
        for ext in (".nii.gz", ".seg.nrrd", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", ".png"):
            if name.lower().endswith(ext):
                name = name[: -len(ext)]
                break
        names.append(name or "image")
    # Two inputs with the same name must not overwrite each other's results.
    seen: dict[str, int] = {}
    paths = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        paths.append(out / (f"{name}{fmt}" if names.count(name) == 1 else f"{name}_{seen[name]}{fmt}"))
    return paths


def write_result(result, path: Path) -> None:
    """Write a segmentation result by the path's extension."""
    if path.name.lower().endswith(".seg.nrrd"):
        from medai.io.seg_nrrd import write_seg_nrrd

        write_seg_nrrd(result.label_map, result.labels, path)
    else:
        from medai.io import write_volume

        write_volume(result.label_map, path)


def derived_outputs(args: argparse.Namespace):
    """The DICOM SEG / RTSTRUCT / mesh / de-identification outputs asked for on the command line."""
    from medai.export.derived_outputs import DerivedOutputs

    return DerivedOutputs(dicom_seg=args.dicom_seg, rtstruct=args.rtstruct, mesh_dir=args.mesh,
                          mesh_format=args.mesh_format, mesh_coordinates=args.mesh_coordinates,
                          mesh_merged=args.mesh_merged, deidentify_dir=args.deidentify)


def require_case_channels(card, args: argparse.Namespace) -> None:
    """Refuse a command line that does not give one image per channel of the model (INPUT + --channel)."""
    names = [channel["name"] for channel in card.channels]
    if args.channel and len(args.inputs) > 1:
        raise MedAIError("--channel gives the other volumes of one case; it cannot be combined with several inputs")
    if len(names) != 1 + len(args.channel):
        given = 1 + len(args.channel)
        raise MedAIError(f"model '{card.id}' takes {len(names)} image{'s' if len(names) > 1 else ''} per case "
                         f"({', '.join(names)}); {given} {'was' if given == 1 else 'were'} given: the first is INPUT, "
                         f"the others --channel IMAGE, in that order")


def run(args: argparse.Namespace) -> int:
    from medai.evaluation.statistics import structure_statistics, write_statistics_csv
    from medai.export.derived_outputs import write_derived
    from medai.io import read_volume
    from medai.pipeline import Segmenter
    from medai.pipeline.modality_check import image_type_check
    from medai.progress import Progress
    from medai.runtime.device import tune_allocator_for_inference

    tune_allocator_for_inference()  # this process only segments and exits: keep activation pages mapped
    progress = Progress(args.progress)
    targets = output_paths(args.inputs, args.output, args.format)
    into_folder = len(targets) > 1 or targets[0].parent != Path(args.output).parent
    # One input with the terminal bar: a failure is the one error line every command prints, not a bar report.
    single_line = len(args.inputs) == 1 and args.progress == "bar"
    derived = derived_outputs(args)
    if into_folder and derived.wanted():
        for folder in derived.targets():
            if folder.exists() and not folder.is_dir():
                raise MedAIError("is a file; with several inputs, DICOM and mesh outputs go into folders", folder)
            folder.mkdir(parents=True, exist_ok=True)
    segmenter = Segmenter(args.model, args.device, args.engine, args.precision, modality_check=image_type_check())
    require_case_channels(segmenter.card, args)
    if args.statistics is not None:
        if args.statistics.exists() and not args.overwrite:
            raise MedAIError("already exists; use --overwrite to replace it", args.statistics)
        if not args.statistics.parent.is_dir():
            raise MedAIError("the folder to write into does not exist", args.statistics.parent)
    statistics: list[dict] = []
    progress.start(len(args.inputs))
    for index, (item, target) in enumerate(zip(args.inputs, targets)):
        progress.begin_case(index, item)
        try:
            if target.exists() and not args.overwrite:
                raise MedAIError("already exists; use --overwrite to replace it", target)
            if not into_folder and not target.parent.is_dir():
                raise MedAIError("the folder to write into does not exist", target.parent)
            progress.update("read", 0.0)
            volume = read_volume(item)
            others = [read_volume(path) for path in args.channel]
            case_outputs = derived.for_case(target.name[: -len(args.format)]) if into_folder else derived
            case_outputs.check(volume, item, args.overwrite)
            # the pipeline reports 0..1 within itself; reading and writing take the ends of the case's bar
            result = segmenter([volume, *others], progress=lambda stage, f: progress.update(stage, 0.02 + 0.93 * f),
                               source=[item, *args.channel])
            for warning in result.warnings:
                print(f"medai: warning: {item}: {warning}", file=sys.stderr)
            progress.update("write", 0.96)
            if into_folder:
                Path(args.output).mkdir(parents=True, exist_ok=True)  # only once there is something to write
            write_result(result, target)
            if case_outputs.wanted():
                try:
                    progress.update("export", 0.98)
                    write_derived(result.label_map, result.labels, volume, case_outputs, segmenter.card.name,
                                  segmenter.card.version)
                except BaseException:
                    target.unlink(missing_ok=True)  # no partial case: the label map goes too
                    raise
            if args.statistics is not None:
                statistics += [{"case": item, **row}
                               for row in structure_statistics(result.label_map, result.labels, volume)]
            progress.case_done(str(target), timings={k: round(v, 3) for k, v in result.timings.items()})
            continue
        except Exception as error:  # noqa: BLE001 - a batch reports every case and carries on
            report_case_failure(progress, case_error_line(error, item, args.debug), single_line)
    if args.statistics is not None and statistics:
        write_statistics_csv(statistics, args.statistics)
    summary = progress.summary()
    if summary["failed"] and len(args.inputs) == 1:
        # one input: the one-line error goes to stderr as for every other command
        print(f"medai: error: {summary['failures'][0]['error']}", file=sys.stderr)
    return 1 if summary["failed"] else 0
