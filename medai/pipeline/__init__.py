"""Segmentation pipeline: input checks -> preprocessing -> inference -> postprocessing -> input grid."""

from medai.pipeline.segment import SegmentationResult, Segmenter, segment_volume

__all__ = ["Segmenter", "SegmentationResult", "segment_volume"]
