"""Evaluate a classifier's predictions CSV against a references CSV, overall and per group.

* **PREDICTIONS.csv** (what ``medai classify`` writes): ``input``, ``label`` (the predicted class) and one
  ``p_<class>`` column per class; the ``p_`` columns define the classes and their order.
* **REFERENCES.csv**: ``input``, ``label`` (the true class) and any other columns (scanner, sex, site...), one of
  which ``group`` may name.

Rows are matched by input: by the whole value when it is the same in both files, otherwise by file name (the
last path component), so predictions listing full paths match references listing names. Every input must be in
both files exactly once. With ``scores="softmax"`` (the default) each row's probabilities must sum to 1 within
:data:`SUM_TOLERANCE`; with ``"sigmoid"`` (independent per-class probabilities) they need not. Any problem is a
:class:`MedAIError` naming the file and line, raised before anything is written.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.evaluation.classification_metrics import CLASS_METRICS, classification_metrics

#: How far a softmax row's probabilities may sum from 1 (CSV rounding of a few classes stays far below it).
SUM_TOLERANCE = 1e-3
#: Columns of metrics.csv; the overall rows have an empty ``group``, the macro row has class ``macro``.
CSV_COLUMNS = ("group", "class", "n", "support", "predicted", *CLASS_METRICS, "accuracy", "balanced_accuracy",
               "undefined")


@dataclass
class _Table:
    path: Path
    rows: list[dict]
    columns: list[str]


@dataclass
class MatchedRows:
    """Predictions and references of the same inputs, row for row."""

    inputs: list[str]
    classes: list[str]
    reference: np.ndarray  #: class indices (N,)
    predicted: np.ndarray  #: class indices (N,)
    probabilities: np.ndarray  #: (N, C)
    groups: Optional[list[str]]


def _read_csv(path: PathLike, required: tuple[str, ...]) -> _Table:
    p = Path(path)
    if not p.is_file():
        raise MedAIError("no such file", p)
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows, columns = list(reader), list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise MedAIError(f"is not a readable CSV file ({error})", p) from None
    missing = [c for c in required if c not in columns]
    if missing or not rows:
        raise MedAIError(f"needs a header with columns {','.join(required)} and at least one row"
                         + (f"; missing {','.join(missing)}" if missing else ""), p)
    for number, row in enumerate(rows, start=2):
        if None in row or any(row[c] is None for c in columns):
            raise MedAIError(f"line {number} does not have {len(columns)} cells like the header", p)
    return _Table(p, rows, columns)


def _keys(table: _Table) -> dict[str, int]:
    """{input: row index}; inputs must be non-empty and unique."""
    keys: dict[str, int] = {}
    for index, row in enumerate(table.rows):
        key = row["input"].strip()
        if not key:
            raise MedAIError(f"line {index + 2} has no input", table.path)
        if key in keys:
            raise MedAIError(f"input '{key}' appears twice (lines {keys[key] + 2} and {index + 2})", table.path)
        keys[key] = index
    return keys


def _by_file_name(keys: dict[str, int], path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, index in keys.items():
        name = Path(key.replace("\\", "/")).name
        if name in out:
            raise MedAIError(f"two inputs share the file name '{name}'; list inputs the same way in both files", path)
        out[name] = index
    return out


def _match(predictions: _Table, references: _Table) -> list[tuple[str, int, int]]:
    """[(input, prediction row, reference row)] in the references' order."""
    pred_keys, ref_keys = _keys(predictions), _keys(references)
    if not set(ref_keys) <= set(pred_keys) or not set(pred_keys) <= set(ref_keys):
        pred_keys, ref_keys = _by_file_name(pred_keys, predictions.path), _by_file_name(ref_keys, references.path)
    missing = [key for key in ref_keys if key not in pred_keys]
    if missing:
        raise MedAIError(f"has no prediction for {len(missing)} input(s) of {references.path.name}: "
                         f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}", predictions.path)
    extra = [key for key in pred_keys if key not in ref_keys]
    if extra:
        raise MedAIError(f"has no reference for {len(extra)} input(s) of {predictions.path.name}: "
                         f"{', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}", references.path)
    return [(key, pred_keys[key], index) for key, index in ref_keys.items()]


def _class_index(value: str, classes: list[str], number: int, path: Path) -> int:
    try:
        return classes.index(value.strip())
    except ValueError:
        raise MedAIError(f"line {number}: label '{value.strip()}' is not one of the classes "
                         f"{', '.join(classes)} (the p_<class> columns of the predictions)", path) from None


def _probabilities(table: _Table, classes: list[str], scores: str) -> np.ndarray:
    out = np.empty((len(table.rows), len(classes)))
    for index, row in enumerate(table.rows):
        for c, name in enumerate(classes):
            text = row[f"p_{name}"].strip()
            try:
                out[index, c] = float(text)
            except ValueError:
                out[index, c] = math.nan
            if not 0.0 <= out[index, c] <= 1.0:
                raise MedAIError(f"line {index + 2}: p_{name} is {text!r}, not a probability in [0, 1]", table.path)
        total = out[index].sum()
        if scores == "softmax" and abs(total - 1.0) > SUM_TOLERANCE:
            raise MedAIError(f"line {index + 2}: the probabilities sum to {total:.6g}, not 1 (softmax scores); "
                             "use --scores sigmoid for independent per-class probabilities", table.path)
    return out


def read_matched(predictions: PathLike, references: PathLike, group: Optional[str] = None,
                 scores: str = "softmax") -> MatchedRows:
    """Read, check and match both files (see the module notes); ``group`` is a column of the references."""
    if scores not in ("softmax", "sigmoid"):
        raise MedAIError(f"scores are 'softmax' or 'sigmoid', not {scores!r}")
    pred = _read_csv(predictions, ("input", "label"))
    ref = _read_csv(references, ("input", "label"))
    classes = [c[2:] for c in pred.columns if c.startswith("p_")]
    if len(classes) < 2 or any(not c for c in classes):
        raise MedAIError("needs a p_<class> column for each of at least two classes", pred.path)
    if group is not None and group not in ref.columns:
        raise MedAIError(f"has no column {group!r} to group by (columns: {', '.join(ref.columns)})", ref.path)
    matched = _match(pred, ref)
    probabilities = _probabilities(pred, classes, scores)
    reference = [_class_index(ref.rows[r]["label"], classes, r + 2, ref.path) for _, _, r in matched]
    predicted = [_class_index(pred.rows[p]["label"], classes, p + 2, pred.path) for _, p, _ in matched]
    groups = None
    if group is not None:
        groups = [ref.rows[r][group].strip() for _, _, r in matched]
        empty = [r + 2 for (_, _, r), g in zip(matched, groups) if not g]
        if empty:
            raise MedAIError(f"line {empty[0]} has no value in the group column {group!r}", ref.path)
    return MatchedRows([key for key, _, _ in matched], classes, np.array(reference), np.array(predicted),
                       probabilities[[p for _, p, _ in matched]], groups)


def evaluate_classification(predictions: PathLike, references: PathLike, group: Optional[str] = None,
                            positive: Optional[str] = None, scores: str = "softmax") -> dict:
    """The report: {"classes", "positive", "scores", "group_column", "inputs", "overall": metrics,
    "per_group": {group: metrics}} ("per_group" only with ``group``).

    ``positive`` names the class whose sensitivity/specificity/AUC the summary leads with; with two classes it
    defaults to the second ``p_`` column. Metrics are those of :func:`classification_metrics`.
    """
    rows = read_matched(predictions, references, group, scores)
    if positive is not None and positive not in rows.classes:
        raise MedAIError(f"--positive {positive!r} is not one of the classes {', '.join(rows.classes)}",
                         predictions)
    if positive is None and len(rows.classes) == 2:
        positive = rows.classes[1]
    report = {"classes": rows.classes, "positive": positive, "scores": scores, "group_column": group,
              "inputs": len(rows.inputs),
              "overall": classification_metrics(rows.reference, rows.predicted, rows.probabilities, rows.classes)}
    if rows.groups is not None:
        names = np.array(rows.groups)
        report["per_group"] = {
            g: classification_metrics(rows.reference[names == g], rows.predicted[names == g],
                                      rows.probabilities[names == g], rows.classes)
            for g in sorted(set(rows.groups))}
    return report


def _scopes(report: dict) -> list[tuple[str, dict]]:
    """("", overall) then (group, metrics) per group."""
    return [("", report["overall"]), *report.get("per_group", {}).items()]


def _csv_rows(report: dict) -> list[list]:
    cell = lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else v  # noqa: E731
    rows = []
    for group, metrics in _scopes(report):
        for name, values in metrics["per_class"].items():
            reasons = "; ".join(f"{m}: {why}" for m, why in values["undefined"].items())
            rows.append([group, name, metrics["n"], values["support"], values["predicted"],
                         *(cell(values[m]) for m in CLASS_METRICS), "", "", reasons])
        rows.append([group, "macro", metrics["n"], metrics["n"], metrics["n"],
                     *(cell(metrics["macro"][m]) for m in CLASS_METRICS), cell(metrics["accuracy"]),
                     cell(metrics["balanced_accuracy"]), ""])
    return rows


def _json_safe(value):
    """NaN and infinities -> None (JSON null), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _panels(report: dict):
    """A figure with one panel per scope (all rows, then each group) and the (title, metrics, axis) triples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scopes = _scopes(report)
    columns = min(len(scopes), 3)
    lines = math.ceil(len(scopes) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.6 * columns, 4.2 * lines), squeeze=False)
    for ax in axes.ravel()[len(scopes):]:
        ax.set_visible(False)
    titled = [(f"{report['group_column']} = {g}" if g else "all inputs", m) for g, m in scopes]
    return plt, fig, [(title, m, ax) for (title, m), ax in zip(titled, axes.ravel())]


def _plot_roc(report: dict, path: Path) -> None:
    plt, fig, panels = _panels(report)
    shown = [report["positive"]] if len(report["classes"]) == 2 else report["classes"]
    for title, metrics, ax in panels:
        for name in shown:
            roc, auc = metrics["roc"][name], metrics["per_class"][name]["roc_auc"]
            if math.isnan(auc):
                continue  # no curve without positives and negatives
            ax.plot(roc["fpr"], roc["tpr"], label=f"{name} (AUC {auc:.3f})")
        ax.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="1 - specificity (FPR)", ylabel="sensitivity (TPR)",
               title=f"{title} (n={metrics['n']})")
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_confusion(report: dict, path: Path) -> None:
    plt, fig, panels = _panels(report)
    classes = report["classes"]
    for title, metrics, ax in panels:
        matrix = np.asarray(metrics["confusion_matrix"])
        ax.imshow(matrix, cmap="Blues")
        for (r, c), count in np.ndenumerate(matrix):
            ax.text(c, r, str(count), ha="center", va="center",
                    color="white" if count > matrix.max() / 2 else "black")
        ticks = range(len(classes))
        ax.set_xticks(ticks, classes, rotation=30, ha="right")
        ax.set_yticks(ticks, classes)
        ax.set(xlabel="predicted", ylabel="reference", title=f"{title} (n={metrics['n']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_classification_outputs(report: dict, folder: PathLike) -> list[Path]:
    """metrics.csv, metrics.json, roc.png and confusion_matrix.png, all appearing in ``folder`` at once."""
    from medai.evaluation.evaluate import publish_outputs

    def write_csv(path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(_csv_rows(report))

    def write_json(path: Path) -> None:
        path.write_text(json.dumps(_json_safe(report), indent=1, allow_nan=False) + "\n")

    return publish_outputs(folder, {"metrics.csv": write_csv, "metrics.json": write_json,
                                    "roc.png": lambda p: _plot_roc(report, p),
                                    "confusion_matrix.png": lambda p: _plot_confusion(report, p)})


def format_summary(report: dict) -> str:
    """A few lines for the terminal: accuracy, balanced accuracy, macro metrics, the positive class, per group."""
    f = lambda v: "n/a" if v is None or math.isnan(v) else f"{v:.3f}"  # noqa: E731
    lines = []
    for group, metrics in _scopes(report):
        head = f"{report['group_column']}={group}" if group else "all"
        macro = metrics["macro"]
        line = (f"{head:<16} n={metrics['n']:<6} accuracy {f(metrics['accuracy'])}"
                f"  balanced {f(metrics['balanced_accuracy'])}  macro F1 {f(macro['f1'])}  macro AUC {f(macro['roc_auc'])}")
        if report["positive"]:
            p = metrics["per_class"][report["positive"]]
            line += (f"  | {report['positive']}: sensitivity {f(p['recall'])} specificity {f(p['specificity'])}"
                     f" AUC {f(p['roc_auc'])}")
        lines.append(line)
    return "\n".join(lines)
