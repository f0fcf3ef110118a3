"""Evaluation of predictions against references: segmentation metrics per label and case (and their summaries),
classification metrics overall and per group."""

from medai.evaluation.classification import evaluate_classification, write_classification_outputs
from medai.evaluation.classification_metrics import classification_metrics, confusion_matrix, roc_auc, roc_curve
from medai.evaluation.evaluate import evaluate_cases, summarize, write_outputs
from medai.evaluation.segmentation_metrics import METRICS, label_metrics, segmentation_metrics, surface_distances

__all__ = ["evaluate_cases", "summarize", "write_outputs", "METRICS", "label_metrics", "segmentation_metrics",
           "surface_distances", "classification_metrics", "confusion_matrix", "roc_auc", "roc_curve",
           "evaluate_classification", "write_classification_outputs"]
