"""``medai evaluate PRED REF -o OUT`` or ``medai evaluate --cases cases.csv -o OUT``: segmentation metrics
(Dice, HD95, mean surface distance, volumes) per case and label, with summaries per label and group."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate", help="compare predicted segmentations with references",
        description="Dice, HD95, mean surface distance (mm) and volumes (mL) per label and case, on the images' "
                    "real geometry. Writes OUTDIR/metrics.csv, summary.json and dice_boxplot.png. A reference may "
                    "be a DICOM SEG or RTSTRUCT file with its image series.")
    parser.add_argument("prediction", nargs="?", metavar="PRED", help="predicted label map (one case)")
    parser.add_argument("reference", nargs="?", metavar="REF", help="reference label map (one case)")
    parser.add_argument("--reference-series", metavar="DIR", help="image series of a DICOM SEG/RTSTRUCT file")
    parser.add_argument("--cases", metavar="CSV", help="CSV with columns case,prediction,reference[,series][,...]; "
                                                       "relative paths are relative to the CSV's folder")
    parser.add_argument("--group", metavar="COLUMN", help="column of the cases CSV to summarise by (site, scanner...)")
    parser.add_argument("--labels", metavar="N,N", help="label values to evaluate (default: all in either map)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results")
    parser.set_defaults(func=run)
    return parser


def read_cases(path: Path, group_column):
    """(pairs, groups) from a cases CSV."""
    from medai.errors import MedAIError

    if not path.is_file():
        raise MedAIError("no such file", path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            table = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise MedAIError(f"is not a readable CSV file ({error})", path) from None
    columns = set(table[0]) if table else set()
    missing = [c for c in ("case", "prediction", "reference") if c not in columns]
    if not table or missing:
        raise MedAIError(f"needs a header with columns case,prediction,reference and at least one row"
                         f"{'; missing ' + ','.join(missing) if table and missing else ''}", path)
    if group_column and group_column not in columns:
        raise MedAIError(f"has no column {group_column!r} to group by (columns: {', '.join(sorted(columns))})", path)
    base = path.parent
    here = lambda value: str(base / value) if value else None  # noqa: E731  (absolute paths stay absolute)
    pairs, groups = [], {}
    for number, row in enumerate(table, start=2):
        if not row["case"] or not row["prediction"] or not row["reference"]:
            raise MedAIError(f"line {number} lacks a case, prediction or reference", path)
        pairs.append((row["case"], here(row["prediction"]), here(row["reference"]), here(row.get("series") or "")))
        if group_column:
            groups[row["case"]] = row[group_column]
    return pairs, (groups if group_column else None)


def run(args: argparse.Namespace) -> int:
    from medai.errors import MedAIError
    from medai.evaluation.evaluate import evaluate_cases, format_table, summarize, write_outputs

    if args.cases:
        if args.prediction or args.reference:
            raise MedAIError("give either PRED REF or --cases CSV, not both")
        pairs, groups = read_cases(Path(args.cases), args.group)
    else:
        if not (args.prediction and args.reference):
            raise MedAIError("give PRED and REF (one case) or --cases CSV")
        if args.group:
            raise MedAIError("--group needs --cases CSV")
        pairs, groups = [(Path(args.prediction).name, args.prediction, args.reference)], None
    labels = None
    if args.labels:
        try:
            labels = [int(v) for v in args.labels.split(",") if v.strip()]
        except ValueError:
            raise MedAIError(f"--labels takes comma-separated integers, not {args.labels!r}") from None
    rows = evaluate_cases(pairs, labels=labels, groups=groups, series=args.reference_series)
    if not rows:
        raise MedAIError("no labels to evaluate: prediction and reference are both empty")
    summary = summarize(rows)
    write_outputs(rows, summary, args.output)
    print(format_table(rows))
    print(f"wrote metrics.csv, summary.json and dice_boxplot.png to {args.output}")
    return 0
