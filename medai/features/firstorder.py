"""First-order (intensity histogram) features: pyradiomics' 18 ``firstorder`` features with its definitions."""

from __future__ import annotations

import numpy as np

#: pyradiomics' non-deprecated first-order features.
NAMES = ("Energy", "TotalEnergy", "Entropy", "Minimum", "10Percentile", "90Percentile", "Maximum", "Mean",
         "Median", "InterquartileRange", "Range", "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation",
         "RootMeanSquared", "Skewness", "Kurtosis", "Variance", "Uniformity")


def firstorder_features(values: np.ndarray, levels: np.ndarray, voxel_volume: float, shift: float) -> dict[str, float]:
    """First-order features of the ROI's intensities ``values`` and their discretised ``levels``.

    ``voxel_volume`` is in mm³ (TotalEnergy); ``shift`` is pyradiomics' voxelArrayShift, added for Energy,
    TotalEnergy and RootMeanSquared only. Skewness and kurtosis of a flat region are 0.
    """
    x = np.asarray(values, dtype=float).ravel()
    _, counts = np.unique(levels, return_counts=True)
    p = counts / counts.sum()
    energy = float(np.sum((x + shift) ** 2))
    mean = x.mean()
    deviation = x - mean
    m2 = np.mean(deviation ** 2)
    m3 = np.mean(deviation ** 3)
    m4 = np.mean(deviation ** 4)
    p10, p25, p75, p90 = np.percentile(x, [10, 25, 75, 90])
    robust = x[(x >= p10) & (x <= p90)]
    return {
        "Energy": energy,
        "TotalEnergy": energy * voxel_volume,
        "Entropy": float(-np.sum(p * np.log2(p + np.spacing(1)))),
        "Minimum": float(x.min()),
        "10Percentile": float(p10),
        "90Percentile": float(p90),
        "Maximum": float(x.max()),
        "Mean": float(mean),
        "Median": float(np.median(x)),
        "InterquartileRange": float(p75 - p25),
        "Range": float(x.max() - x.min()),
        "MeanAbsoluteDeviation": float(np.mean(np.abs(deviation))),
        "RobustMeanAbsoluteDeviation": float(np.mean(np.abs(robust - robust.mean()))),
        "RootMeanSquared": float(np.sqrt(energy / x.size)),
        "Skewness": float(m3 / m2 ** 1.5) if m2 else 0.0,
        "Kurtosis": float(m4 / m2 ** 2) if m2 else 0.0,
        "Variance": float(np.std(x) ** 2),
        "Uniformity": float(np.sum(p ** 2)),
    }
