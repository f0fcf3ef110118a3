"""``medai convert IN OUT``: read any supported image and write it in another format, geometry intact."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("convert", help="convert an image or DICOM series to NIfTI/NRRD/MHA")
    parser.add_argument("input", help="NIfTI, NRRD, MHA/MHD, PNG or DICOM file, or a DICOM series folder")
    parser.add_argument("output", help="output file (.nii.gz, .nii, .nrrd, .mha, .mhd)")
    parser.add_argument("--series", help="SeriesInstanceUID to read from a folder holding several series")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from medai.io import read_volume, write_volume

    volume = read_volume(args.input, series_uid=args.series)
    write_volume(volume, args.output)
    print(f"wrote {args.output}")
    return 0
