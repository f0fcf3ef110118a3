"""Grey-level discretisation exactly as pyradiomics' ``getBinEdges``/``binImage`` do it."""

from __future__ import annotations

import numpy as np

from medai.features.settings import FeatureSettings


def bin_edges(values: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Bin edges for the ROI's ``values``: fixed width from a multiple of ``binWidth``, or ``binCount`` bins.

    Bins are half-open [lower, upper); with a fixed width they start at the largest multiple of the width not
    above the minimum, so discretised levels are floor(x / W) - floor(min / W) + 1.
    """
    if settings.binCount is not None:
        edges = np.histogram(values, settings.binCount)[1]
        edges[-1] += 1  # the maximum falls in the top bin under np.digitize
        return edges
    width = settings.binWidth
    low = values.min() - values.min() % width
    edges = np.arange(low, values.max() + 2 * width, width)
    if len(edges) == 1:  # flat region on a bin boundary: one bin needs two edges
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def discretise(values: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Discretised grey levels (1, 2, ...) of the ROI's ``values`` (a 1D or masked-out array)."""
    return np.digitize(values, bin_edges(np.asarray(values).ravel(), settings))
