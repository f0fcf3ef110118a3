"""Segmentation metrics per label on one grid, in millimetres and millilitres.

Definitions (they match MONAI's ``compute_dice``, ``compute_hausdorff_distance(percentile=95)`` and
``compute_average_surface_distance(symmetric=True)`` with ``spacing``):

* **surface** -- the boundary voxels of a mask: mask voxels with at least one face neighbour (6-connectivity)
  outside the mask or outside the image (``mask ^ binary_erosion(mask)``, border counts as background);
* **surface distances** -- from every surface voxel of one mask to the nearest surface voxel of the other,
  via ``scipy.ndimage.distance_transform_edt`` with ``sampling`` = the spacing in K,J,I order, so anisotropic
  voxels are measured correctly. The direction matrix is a rotation (orthonormal), which does not change
  distances within one grid;
* **HD95** -- the larger of the two directed 95th percentiles (numpy's linear interpolation);
* **MSD** -- the mean of both directed distance sets together (average symmetric surface distance);
* **volumes** -- voxel count x voxel volume, in mL; the difference is prediction - reference, absolute (mL) and
  relative to the reference (%).

Empty masks: both empty gives Dice 1 and distances 0 (perfect agreement about absence); exactly one empty gives
Dice 0 and distances NaN (undefined: there is no surface to measure to). A relative volume difference with an
empty reference is NaN unless the prediction is empty too (then 0). NaN is written as an empty CSV cell and as
JSON ``null``; summaries leave NaN out of mean/std/median and count them as ``n_undefined``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from medai.metrics import dice

#: The per-label metrics, in the order of the CSV columns.
METRICS = ("dice", "hd95_mm", "msd_mm", "volume_prediction_ml", "volume_reference_ml", "volume_difference_ml",
           "volume_difference_abs_ml", "volume_difference_percent")

_FACES = ndimage.generate_binary_structure(3, 1)


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask ^ ndimage.binary_erosion(mask, structure=_FACES, border_value=0)


def surface_distances(prediction: np.ndarray, reference: np.ndarray, spacing_kji) -> tuple[np.ndarray, np.ndarray]:
    """(prediction -> reference, reference -> prediction) distances in mm of surface voxels; both masks non-empty.

    ``spacing_kji`` is the voxel size along the array's axes (K,J,I order, i.e. ``volume.spacing[::-1]``).
    """
    prediction, reference = np.asarray(prediction, bool), np.asarray(reference, bool)
    # work in the bounding box of both masks (plus one voxel): every surface voxel lies inside it
    box = ndimage.find_objects((prediction | reference).astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    pred_surface, ref_surface = _surface(prediction[box]), _surface(reference[box])
    # a mask cut by the box edge: erosion with border_value=0 treats the outside as background, as on the full
    # image, because the box keeps a one-voxel margin except where the image itself ends
    sampling = np.asarray(spacing_kji, float)
    to_ref = ndimage.distance_transform_edt(~ref_surface, sampling=sampling)[pred_surface]
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=sampling)[ref_surface]
    return to_ref, to_pred


def label_metrics(prediction: np.ndarray, reference: np.ndarray, spacing_kji) -> dict[str, float]:
    """The :data:`METRICS` of two binary masks on one grid with voxel size ``spacing_kji`` (mm, K,J,I order)."""
    prediction, reference = np.asarray(prediction, bool), np.asarray(reference, bool)
    if prediction.shape != reference.shape:
        raise ValueError(f"masks have different shapes: {prediction.shape} vs {reference.shape}")
    voxel_ml = float(np.prod(np.asarray(spacing_kji, float))) / 1000.0
    n_pred, n_ref = int(prediction.sum()), int(reference.sum())
    out: dict[str, float] = {}
    if n_pred + n_ref == 0:
        out.update(dice=1.0, hd95_mm=0.0, msd_mm=0.0)
    elif n_pred == 0 or n_ref == 0:
        out.update(dice=0.0, hd95_mm=math.nan, msd_mm=math.nan)
    else:
        out["dice"] = dice(prediction, reference)
        to_ref, to_pred = surface_distances(prediction, reference, spacing_kji)
        out["hd95_mm"] = float(max(np.percentile(to_ref, 95), np.percentile(to_pred, 95)))
        out["msd_mm"] = float(np.concatenate([to_ref, to_pred]).mean())
    v_pred, v_ref = n_pred * voxel_ml, n_ref * voxel_ml
    out["volume_prediction_ml"] = v_pred
    out["volume_reference_ml"] = v_ref
    out["volume_difference_ml"] = v_pred - v_ref
    out["volume_difference_abs_ml"] = abs(v_pred - v_ref)
    out["volume_difference_percent"] = (100.0 * (n_pred - n_ref) / n_ref if n_ref else (0.0 if n_pred == 0 else math.nan))
    return {name: out[name] for name in METRICS}


def segmentation_metrics(prediction, reference, labels=None) -> dict[int, dict[str, float]]:
    """{label value: metrics} for two label-map Volumes on the same grid.

    ``labels`` defaults to every non-zero value in either map.
    """
    if not prediction.same_grid(reference):
        raise ValueError("prediction and reference are on different grids; resample the prediction first")
    pred, ref = np.asarray(prediction.array), np.asarray(reference.array)
    if labels is None:
        labels = sorted((set(np.unique(pred).tolist()) | set(np.unique(ref).tolist())) - {0})
    spacing_kji = reference.spacing[::-1]
    return {int(value): label_metrics(pred == value, ref == value, spacing_kji) for value in labels}
