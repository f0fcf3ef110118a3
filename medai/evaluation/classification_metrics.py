"""Classification metrics in numpy: confusion matrix, per-class and macro scores, ROC curves and ROC AUC.

Conventions (the same as scikit-learn's, against which the tests check every number):

* classes are indices 0..C-1 into a list of class names; the **confusion matrix** has the reference class in
  rows and the predicted class in columns;
* per class, one-vs-rest counts tp, fp, fn, tn give **precision** tp/(tp+fp), **recall** (sensitivity)
  tp/(tp+fn), **specificity** tn/(tn+fp) and **F1** 2tp/(2tp+fp+fn). A metric whose denominator is zero is
  undefined: NaN, with the reason in ``undefined`` (e.g. recall of a class that no reference row has);
* **macro** = the mean over classes of the defined (non-NaN) per-class values, NaN when none is defined;
* **accuracy** = share of rows predicted right; **balanced accuracy** = mean recall over the classes present
  in the references;
* **ROC** per class, one-vs-rest on that class's probability: one point per distinct score (ties share a point),
  collinear intermediate points dropped, starting at (0, 0) with threshold +inf; **ROC AUC** = trapezoidal
  area under it, which counts tied pairs as half right. It is undefined (NaN) when the class is absent from the
  references or when every reference row has it (no negatives).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: Per-class metrics, in the order of the CSV columns.
CLASS_METRICS = ("precision", "recall", "specificity", "f1", "roc_auc")


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts: row = reference class, column = predicted class (class indices 0..C-1)."""
    counts = np.bincount(np.asarray(reference) * n_classes + np.asarray(predicted), minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def roc_curve(is_positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds) of ``scores`` for the binary truth ``is_positive``.

    A point per distinct score, highest first, minus points on a straight line between their neighbours; the
    first point is (0, 0) at threshold +inf. Rates are NaN when there are no negatives (fpr) or positives (tpr).
    """
    is_positive = np.asarray(is_positive, bool)
    scores = np.asarray(scores, float)
    order = np.argsort(-scores, kind="mergesort")
    scores, is_positive = scores[order], is_positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.cumsum(is_positive, dtype=float)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    thresholds = scores[last_of_tie]
    if tps.size > 2:  # keep the ends and every corner
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        tps, fps, thresholds = tps[keep], fps[keep], thresholds[keep]
    tps, fps, thresholds = np.r_[0.0, tps], np.r_[0.0, fps], np.r_[np.inf, thresholds]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
        tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thresholds


def roc_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under :func:`roc_curve`; NaN when the truth holds only positives or only negatives."""
    is_positive = np.asarray(is_positive, bool)
    if is_positive.all() or not is_positive.any():
        return math.nan
    fpr, tpr, _ = roc_curve(is_positive, scores)
    return float(np.trapezoid(tpr, fpr))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else math.nan


def _nanmean(values: Sequence[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def classification_metrics(reference: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray,
                           classes: Sequence[str]) -> dict:
    """Every metric of one set of rows.

    ``reference`` and ``predicted`` are class indices (N,), ``probabilities`` is (N, C) in the order of
    ``classes``. Returns {"n", "accuracy", "balanced_accuracy", "confusion_matrix" (list of lists),
    "per_class": {name: {"support", "predicted", metric..., "undefined": {metric: reason}}},
    "macro": {metric: value}, "roc": {name: {"fpr", "tpr", "thresholds"}}} with NaN for undefined values.
    """
    reference, predicted = np.asarray(reference, int), np.asarray(predicted, int)
    probabilities = np.asarray(probabilities, float)
    n, n_classes = reference.size, len(classes)
    matrix = confusion_matrix(reference, predicted, n_classes)
    per_class, roc = {}, {}
    for c, name in enumerate(classes):
        tp = int(matrix[c, c])
        fn = int(matrix[c].sum()) - tp
        fp = int(matrix[:, c].sum()) - tp
        tn = n - tp - fn - fp
        truth = reference == c
        row = {"support": tp + fn, "predicted": tp + fp, "precision": _ratio(tp, tp + fp),
               "recall": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp),
               "f1": _ratio(2 * tp, 2 * tp + fp + fn), "roc_auc": roc_auc(truth, probabilities[:, c])}
        undefined = {}
        if tp + fp == 0:
            undefined["precision"] = f"no row is predicted as '{name}'"
        if tp + fn == 0:
            undefined["recall"] = f"no reference row is '{name}'"
            undefined["roc_auc"] = f"no reference row is '{name}' (no positives)"
        if tn + fp == 0:
            undefined["specificity"] = f"every reference row is '{name}' (no negatives)"
            undefined["roc_auc"] = f"every reference row is '{name}' (no negatives)"
        if 2 * tp + fp + fn == 0:
            undefined["f1"] = f"'{name}' is neither in the references nor predicted"
        row["undefined"] = undefined
        per_class[name] = row
        fpr, tpr, thresholds = roc_curve(truth, probabilities[:, c])
        roc[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()}
    present = [per_class[name]["recall"] for c, name in enumerate(classes) if matrix[c].sum() > 0]
    return {
        "n": int(n),
        "accuracy": _ratio(int(np.trace(matrix)), n),
        "balanced_accuracy": _nanmean(present),
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class,
        "macro": {metric: _nanmean([per_class[name][metric] for name in classes]) for metric in CLASS_METRICS},
        "roc": roc,
    }
