"""The engine's image type and its one geometry convention.

A :class:`Volume` holds voxels as a numpy array in K,J,I order (slowest axis first, as SimpleITK's
``GetArrayFromImage`` and Slicer's ``arrayFromVolume`` return them) and geometry in LPS, as ITK and
DICOM define it:

* ``spacing``   -- (sI, sJ, sK) in millimetres, the step along each voxel axis;
* ``origin``    -- LPS position in millimetres of the centre of voxel (i, j, k) = (0, 0, 0);
* ``direction`` -- 3x3 matrix whose columns are the unit LPS directions of the I, J and K axes.

This module is the only place that converts that convention to others: Slicer's IJKToRAS matrix and
MONAI's I,J,K array with its RAS affine. Everything else in MedAI works in the engine's convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

#: LPS <-> RAS: negate the first two coordinates.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class Volume:
    """Voxels (K,J,I) plus LPS geometry; ``metadata`` carries free-form provenance (e.g. DICOM UIDs)."""

    array: np.ndarray
    spacing: np.ndarray = field(default_factory=lambda: np.ones(3))
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise ValueError(f"Volume arrays are 3D (K,J,I); got shape {self.array.shape}")
        self.spacing = np.asarray(self.spacing, dtype=float).reshape(3)
        self.origin = np.asarray(self.origin, dtype=float).reshape(3)
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if np.any(self.spacing <= 0) or not np.all(np.isfinite(self.spacing)):
            raise ValueError(f"Spacing must be positive and finite; got {self.spacing}")

    # --- shape helpers -------------------------------------------------------------------------
    @property
    def size_ijk(self) -> tuple[int, int, int]:
        """Number of voxels along I, J, K."""
        k, j, i = self.array.shape
        return (i, j, k)

    def with_array(self, array: np.ndarray, **metadata: Any) -> "Volume":
        """A volume on this geometry holding ``array`` (same K,J,I shape)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise ValueError(f"Array shape {array.shape} does not match the grid {self.array.shape}")
        return replace(self, array=array, metadata={**self.metadata, **metadata})

    def same_grid(self, other: "Volume", tol: float = 1e-6) -> bool:
        """True when both volumes have the same shape and their voxel centres agree within ``tol`` mm."""
        return self.array.shape == other.array.shape and bool(
            np.allclose(self.index_to_lps_matrix(), other.index_to_lps_matrix(), atol=tol, rtol=0)
        )

    # --- the engine's own affine ---------------------------------------------------------------
    def index_to_lps_matrix(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) to LPS millimetres."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def lps_points(self, ijk: np.ndarray) -> np.ndarray:
        """LPS positions (N,3) of continuous voxel indices given as (N,3) in I,J,K order."""
        ijk = np.asarray(ijk, dtype=float).reshape(-1, 3)
        return ijk @ (self.direction @ np.diag(self.spacing)).T + self.origin

    def ijk_indices(self, lps: np.ndarray) -> np.ndarray:
        """Continuous I,J,K indices (N,3) of LPS points given as (N,3)."""
        lps = np.asarray(lps, dtype=float).reshape(-1, 3)
        return (lps - self.origin) @ np.linalg.inv(self.direction @ np.diag(self.spacing)).T

    # --- Slicer ---------------------------------------------------------------------------------
    def ijk_to_ras_matrix(self) -> np.ndarray:
        """Slicer's IJKToRAS: diag(-1,-1,1,1) @ index_to_lps."""
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        return flip @ self.index_to_lps_matrix()

    @staticmethod
    def geometry_from_ijk_to_ras(ijk_to_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(spacing, origin, direction) in LPS from a 4x4 IJKToRAS matrix."""
        m = np.asarray(ijk_to_ras, dtype=float).reshape(4, 4)
        lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ m
        columns = lps[:3, :3]
        spacing = np.linalg.norm(columns, axis=0)
        return spacing, lps[:3, 3].copy(), columns / spacing

    @classmethod
    def from_ijk_to_ras(cls, array_kji: np.ndarray, ijk_to_ras: np.ndarray, **metadata: Any) -> "Volume":
        """A volume from a K,J,I array and Slicer's IJKToRAS matrix."""
        spacing, origin, direction = cls.geometry_from_ijk_to_ras(ijk_to_ras)
        return cls(array_kji, spacing, origin, direction, dict(metadata))

    # --- MONAI ------------------------------------------------------------------------------------
    def to_monai(self) -> tuple[np.ndarray, np.ndarray]:
        """(I,J,K array, RAS affine) as MONAI's LoadImage returns them; the affine equals IJKToRAS."""
        return np.ascontiguousarray(self.array.transpose(2, 1, 0)), self.ijk_to_ras_matrix()

    @classmethod
    def from_monai(cls, array_ijk: np.ndarray, affine_ras: np.ndarray, **metadata: Any) -> "Volume":
        """A volume from MONAI's I,J,K array and RAS affine."""
        return cls.from_ijk_to_ras(np.asarray(array_ijk).transpose(2, 1, 0), affine_ras, **metadata)

    def __repr__(self) -> str:  # arrays are too long for a useful default repr
        return (
            f"Volume(shape_kji={self.array.shape}, dtype={self.array.dtype}, spacing={self.spacing.tolist()}, "
            f"origin={self.origin.tolist()}, direction={self.direction.round(6).tolist()})"
        )
