"""``medai evaluate``: compare predictions with references.

* segmentation (label maps): ``medai evaluate PRED REF -o OUT`` or ``medai evaluate --cases cases.csv -o OUT``:
  Dice, HD95, mean surface distance and volumes per case and label, with summaries per label and group;
* classification (tables): ``medai evaluate --task classification PREDICTIONS.csv REFERENCES.csv -o OUT``:
  accuracy, balanced accuracy, precision, recall/sensitivity, specificity, F1, ROC AUC and the confusion matrix,
  overall and per ``--group``.

``--task auto`` (the default) picks classification when both positional files are ``.csv`` files.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate", help="compare predictions (segmentations or classifications) with references",
        description="Segmentation: Dice, HD95, mean surface distance (mm) and volumes (mL) per label and case, on "
                    "the images' real geometry; writes OUTDIR/metrics.csv, summary.json and dice_boxplot.png. A "
                    "reference may be a DICOM SEG or RTSTRUCT file with its image series. Classification "
                    "(PREDICTIONS.csv as `medai classify` writes it: input,label,p_<class>...; REFERENCES.csv: "
                    "input,label[,group columns]): accuracy, balanced accuracy, per-class and macro precision, "
                    "recall/sensitivity, specificity, F1 and ROC AUC, and the confusion matrix; writes "
                    "OUTDIR/metrics.csv, metrics.json, roc.png and confusion_matrix.png. Outputs appear all at once, "
                    "or not at all on an error.")
    parser.add_argument("prediction", nargs="?", metavar="PRED",
                        help="predicted label map (one case), or PREDICTIONS.csv")
    parser.add_argument("reference", nargs="?", metavar="REF", help="reference label map (one case), or REFERENCES.csv")
    parser.add_argument("--task", choices=("auto", "segmentation", "classification"), default="auto",
                        help="what is compared (default: classification when PRED and REF are .csv files)")
    parser.add_argument("--reference-series", metavar="DIR", help="image series of a DICOM SEG/RTSTRUCT file")
    parser.add_argument("--cases", metavar="CSV", help="segmentation: CSV with columns case,prediction,reference"
                                                       "[,series][,...]; relative paths are relative to its folder")
    parser.add_argument("--group", metavar="COLUMN", help="column to report by (site, scanner, sex...): of the cases "
                                                          "CSV (segmentation) or of REFERENCES.csv (classification)")
    parser.add_argument("--labels", metavar="N,N", help="segmentation: label values to evaluate (default: all)")
    parser.add_argument("--positive", metavar="CLASS", help="classification: the class whose sensitivity, specificity "
                                                            "and AUC lead the summary (default with two classes: the "
                                                            "second p_ column)")
    parser.add_argument("--scores", choices=("softmax", "sigmoid"), default="softmax",
                        help="classification: softmax rows must sum to 1; sigmoid scores are independent "
                             "(default: softmax)")
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


def task_of(args: argparse.Namespace) -> str:
    """The task asked for, or guessed: classification when both positional files are CSV tables."""
    if args.task != "auto":
        return args.task
    tables = [p for p in (args.prediction, args.reference) if p and p.lower().endswith(".csv")]
    return "classification" if len(tables) == 2 and not args.cases else "segmentation"


def run(args: argparse.Namespace) -> int:
    if task_of(args) == "classification":
        return run_classification(args)
    return run_segmentation(args)


def run_classification(args: argparse.Namespace) -> int:
    from medai.errors import MedAIError
    from medai.evaluation.classification import evaluate_classification, format_summary, write_classification_outputs

    unused = [flag for flag, value in (("--cases", args.cases), ("--labels", args.labels),
                                       ("--reference-series", args.reference_series)) if value]
    if unused:
        raise MedAIError(f"{', '.join(unused)} belong(s) to segmentation; classification takes "
                         "PREDICTIONS.csv REFERENCES.csv [--group COLUMN] [--positive CLASS]")
    if not (args.prediction and args.reference):
        raise MedAIError("give PREDICTIONS.csv and REFERENCES.csv")
    report = evaluate_classification(args.prediction, args.reference, group=args.group, positive=args.positive,
                                     scores=args.scores)
    write_classification_outputs(report, args.output)
    print(format_summary(report))
    print(f"wrote metrics.csv, metrics.json, roc.png and confusion_matrix.png to {args.output}")
    return 0


def run_segmentation(args: argparse.Namespace) -> int:
    from medai.errors import MedAIError
    from medai.evaluation.evaluate import evaluate_cases, format_table, summarize, write_outputs

    if args.positive:
        raise MedAIError("--positive belongs to classification (--task classification)")
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
    rows, failures = [], []
    for pair in pairs:  # every case is checked, so one run lists every problem
        try:
            rows.extend(evaluate_cases([pair], labels=labels, groups=groups, series=args.reference_series))
        except MedAIError as error:
            if args.debug or len(pairs) == 1:
                raise
            failures.append(error.one_line())
        except Exception as error:  # noqa: BLE001 - a batch reports every case and carries on
            if args.debug:
                raise
            failures.append(f"{pair[0]}: unexpected error ({type(error).__name__}: {error}); rerun with --debug")
    if failures:
        # metrics of the other cases alone would misrepresent the set: nothing is written
        for line in failures:
            print(f"medai: error: {line}", file=sys.stderr)
        print(f"medai: {len(failures)} of {len(pairs)} cases failed; nothing written", file=sys.stderr)
        return 1
    if not rows:
        raise MedAIError("no labels to evaluate: prediction and reference are both empty")
    summary = summarize(rows)
    write_outputs(rows, summary, args.output)
    print(format_table(rows))
    print(f"wrote metrics.csv, summary.json and dice_boxplot.png to {args.output}")
    return 0
