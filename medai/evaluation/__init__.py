"""Evaluation of predictions against references: segmentation metrics per label and case, and their summaries."""

from medai.evaluation.evaluate import evaluate_cases, summarize, write_outputs
from medai.evaluation.segmentation_metrics import METRICS, label_metrics, segmentation_metrics, surface_distances

__all__ = ["evaluate_cases", "summarize", "write_outputs", "METRICS", "label_metrics", "segmentation_metrics",
           "surface_distances"]
