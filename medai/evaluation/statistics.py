"""Per-structure statistics of a segmentation: volume and the intensities of the image inside each segment.

What a radiologist reads off Slicer's Segment Statistics module, or TotalSegmentator's ``--statistics``: for each
segment its voxel count, volume in millilitres (voxel count x voxel volume on the label map's grid) and the mean,
standard deviation, minimum, maximum and median of the image under it. The standard deviation is the sample one
(n - 1), as Slicer's Segment Statistics (``vtkImageAccumulate``) reports it. An empty segment has volume 0 and no
intensities (NaN, an empty cell in the CSV). The image must be on the label map's grid, as every MedAI result is
on its input's grid.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from medai.errors import MedAIError, PathLike
from medai.labels import SegmentLabel
from medai.volume import Volume

#: Columns of a statistics table, in order (``case`` first when there are several cases).
COLUMNS = ("segment", "label", "voxels", "volume_ml", "mean", "std", "min", "max", "median")


def structure_statistics(label_map: Volume, labels: Sequence[SegmentLabel],
                         image: Optional[Volume] = None) -> list[dict[str, Any]]:
    """One row per label of ``labels`` (:data:`COLUMNS`); intensities are NaN without ``image``."""
    if image is not None and not image.same_grid(label_map, tol=1e-4):
        raise MedAIError("the image is not on the segmentation's grid; statistics need both on one grid")
    voxel_ml = float(np.prod(label_map.spacing)) / 1000.0
    values = None if image is None else np.asarray(image.array)
    return [{"segment": label.name, "label": label.value,
             **mask_statistics(label_map.array == label.value, values, voxel_ml)} for label in labels]


def mask_statistics(mask: np.ndarray, values: Optional[np.ndarray], voxel_ml: float) -> dict[str, Any]:
    """``voxels``, ``volume_ml`` and the intensity columns of one segment's boolean ``mask`` over ``values``."""
    count = int(mask.sum())
    under = values[mask].astype(np.float64) if values is not None and count else np.empty(0)
    return {"voxels": count, "volume_ml": count * voxel_ml,
            "mean": float(under.mean()) if under.size else math.nan,
            "std": float(under.std(ddof=1)) if under.size > 1 else math.nan,
            "min": float(under.min()) if under.size else math.nan,
            "max": float(under.max()) if under.size else math.nan,
            "median": float(np.median(under)) if under.size else math.nan}


def write_statistics_csv(rows: Sequence[dict[str, Any]], path: PathLike) -> Path:
    """Write statistics rows (with a ``case`` column when any row has one) to ``path``, all at once."""
    from medai.io.atomic import write_atomically

    columns = (("case",) if any("case" in row for row in rows) else ()) + COLUMNS

    def write(target: Path) -> None:
        with open(target, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(row.get(column)) for column in columns])

    return write_atomically(path, write)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else str(value)
