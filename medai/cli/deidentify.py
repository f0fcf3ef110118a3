"""``medai deidentify FOLDER... -o OUT``: a de-identified copy of DICOM files (images, SEG, RTSTRUCT) whose
references still resolve; the sources are never modified."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("deidentify", help="write a de-identified copy of DICOM files",
                                   description="De-identify DICOM folders and files together (one consistent mapping "
                                               "of names, IDs, dates and UIDs), into a new folder.")
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="DICOM folder or file")
    parser.add_argument("-o", "--output", required=True, help="new (or empty) folder for the de-identified copy")
    parser.add_argument("--seed", help="makes the replacement values reproducible across runs")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from medai.io.dicom.deidentify import deidentify_files

    written = deidentify_files(args.sources, args.output, seed=args.seed)
    print(f"wrote {len(written)} de-identified files to {args.output}")
    return 0
