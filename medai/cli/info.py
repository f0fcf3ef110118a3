"""``medai info IN``: print an image's grid and geometry (LPS)."""

from __future__ import annotations

import argparse
import json

#: Series attributes shown for DICOM input (the per-slice lists are left out).
DICOM_SUMMARY = ("Modality", "SeriesDescription", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("info", help="print an image's size, spacing, origin and direction")
    parser.add_argument("input", help="image file or DICOM series folder")
    parser.add_argument("--series", help="SeriesInstanceUID to read from a folder holding several series")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from medai.io import read_volume

    volume = read_volume(args.input, series_uid=args.series)
    info = {
        "path": str(args.input),
        "size_ijk": list(volume.size_ijk),
        "dtype": str(volume.array.dtype),
        "spacing": volume.spacing.tolist(),
        "origin_lps": volume.origin.tolist(),
        "direction_lps": volume.direction.tolist(),
    }
    dicom = volume.metadata.get("dicom")
    if dicom:
        info["dicom"] = {key: dicom[key] for key in DICOM_SUMMARY}
    print(json.dumps(info, indent=2))
    return 0
