"""Stacking DICOM planes into one regular 3D grid, or refusing clearly why they do not make one.

Convention: I follows the row cosine (along a row, increasing column index), J the column cosine, and K the
slice normal row x column. Planes are sorted by their position along that normal, ascending, so the direction
matrix is always right-handed (det = +1) -- as ITK's and Slicer's DICOM readers do. A series written with K
running against the normal (a left-handed volume) therefore reads back with K reversed: the same voxels at the
same physical positions. File names and InstanceNumber are never used for ordering.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medai.errors import MedAIError
from medai.io.dicom.series.planes import Plane

#: Positions may sit this far off a perfectly regular stack: 1 % of the slice spacing, at least 0.01 mm.
RELATIVE_TOLERANCE = 0.01
ABSOLUTE_TOLERANCE_MM = 0.01
#: Orientation cosines of the planes of one stack must agree to this.
COSINE_TOLERANCE = 1e-4
#: A step this many times the median step means slices are missing.
GAP_FACTOR = 1.5


@dataclass(frozen=True)
class Stack:
    """Planes in K order and the grid they make (LPS)."""

    planes: list[Plane]
    spacing: np.ndarray
    origin: np.ndarray
    direction: np.ndarray


def stack_planes(planes: list[Plane], where: Path) -> Stack:
    """Sort ``planes`` along their normal and check they make a regular grid; errors name ``where`` and the files."""
    _require_same(planes, where, "image sizes", lambda p: f"{p.columns}x{p.rows}")
    _require_same(planes, where, "pixel spacings", lambda p: "x".join(f"{s:.6g}" for s in p.spacing_ij))
    if len(planes) == 1:
        return _lone_plane(planes[0])
    unplaced = [p for p in planes if p.position is None or p.row_cosine is None]
    if unplaced:
        raise MedAIError(
            f"has {len(planes)} images but {unplaced[0].label()} has no ImagePositionPatient/ImageOrientationPatient, "
            "so they cannot be stacked into a volume", where)
    direction = _direction(planes[0])
    for plane in planes[1:]:
        if not (np.allclose(plane.row_cosine, planes[0].row_cosine, atol=COSINE_TOLERANCE)
                and np.allclose(plane.column_cosine, planes[0].column_cosine, atol=COSINE_TOLERANCE)):
            raise MedAIError(f"mixes image orientations ({planes[0].label()} and {plane.label()}); one series must be one stack", where)
    heights = np.array([p.position @ direction[:, 2] for p in planes])
    order = np.argsort(heights, kind="stable")
    planes = [planes[i] for i in order]
    heights = heights[order]
    spacing_k = _regular_spacing(planes, heights, where)
    _require_stacked_along_normal(planes, direction, spacing_k, where)
    spacing = np.array([planes[0].spacing_ij[0], planes[0].spacing_ij[1], spacing_k])
    return Stack(planes, spacing, planes[0].position.copy(), direction)


def _tolerance(spacing: float) -> float:
    return max(ABSOLUTE_TOLERANCE_MM, RELATIVE_TOLERANCE * spacing)


def _regular_spacing(planes: list[Plane], heights: np.ndarray, where: Path) -> float:
    """The K spacing of sorted planes, refusing duplicates, missing slices and uneven steps."""
    steps = np.diff(heights)
    median = float(np.median(steps))
    for i, step in enumerate(steps):
        if step < _tolerance(median):
            raise MedAIError(
                f"has two images at the same position {heights[i]:.4f} mm along the slice normal "
                f"({planes[i].label()} and {planes[i + 1].label()}); duplicate slices (or several time points "
                "or stacks in one series) are not supported", where)
    for i, step in enumerate(steps):
        if step >= GAP_FACTOR * median:
            raise MedAIError(
                f"is missing slices: a gap of {step:.4g} mm between {planes[i].label()} and {planes[i + 1].label()} "
                f"where slices are {median:.4g} mm apart", where)
    spacing = float((heights[-1] - heights[0]) / (len(heights) - 1))
    off_grid = np.abs(heights - (heights[0] + spacing * np.arange(len(heights))))
    worst = int(np.argmax(off_grid))
    if off_grid[worst] > _tolerance(spacing):
        raise MedAIError(
            f"has unevenly spaced slices: steps range from {steps.min():.4g} to {steps.max():.4g} mm, and "
            f"{planes[worst].label()} lies {off_grid[worst]:.3g} mm off a regular grid (tolerance {_tolerance(spacing):.3g} mm)",
            where)
    return spacing


def _require_stacked_along_normal(planes: list[Plane], direction: np.ndarray, spacing_k: float, where: Path) -> None:
    """Refuse sheared stacks (e.g. CT gantry tilt): each plane's corner must lie on the normal through the first."""
    offsets = np.array([p.position - planes[0].position for p in planes])
    in_plane = offsets @ direction[:, :2]
    worst = int(np.argmax(np.linalg.norm(in_plane, axis=1)))
    if np.linalg.norm(in_plane[worst]) > _tolerance(spacing_k):
        raise MedAIError(
            f"is a sheared stack ({planes[worst].label()} is shifted {np.linalg.norm(in_plane[worst]):.3g} mm within its "
            "plane, as with CT gantry tilt); resample it to an orthogonal grid first", where)


def _direction(plane: Plane) -> np.ndarray:
    """Columns: row cosine (I), column cosine (J), their cross product (K); made exactly orthonormal."""
    row = plane.row_cosine / np.linalg.norm(plane.row_cosine)
    column = plane.column_cosine / np.linalg.norm(plane.column_cosine)
    if abs(row @ column) > 1e-3:
        raise MedAIError(f"has an ImageOrientationPatient whose row and column are not perpendicular: {row} {column}", plane.file)
    column = column - (column @ row) * row
    column /= np.linalg.norm(column)
    return np.column_stack([row, column, np.cross(row, column)])


def _lone_plane(plane: Plane) -> Stack:
    """A one-slice grid: identity direction and zero origin when the file does not place the image."""
    direction = np.eye(3) if plane.row_cosine is None else _direction(plane)
    origin = np.zeros(3) if plane.position is None else plane.position.copy()
    thickness = plane.thickness if plane.thickness and plane.thickness > 0 else 1.0
    return Stack([plane], np.array([plane.spacing_ij[0], plane.spacing_ij[1], thickness]), origin, direction)


def _require_same(planes: list[Plane], where: Path, what: str, key) -> None:
    values: dict[str, Plane] = {}
    for plane in planes:
        values.setdefault(key(plane), plane)
    if len(values) > 1:
        examples = ", ".join(f"{value} ({plane.label()})" for value, plane in values.items())
        raise MedAIError(f"mixes {what}: {examples}; one series must be one stack", where)
