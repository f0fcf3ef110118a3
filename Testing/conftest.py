"""Shared fixtures: the real images of shared/DATA.md (installed by scripts/setup.sh) and geometry variants.

A missing data file is a failure, not a skip: the set-up installs every one of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medai import Volume
from medai.io import read_volume

COLIN27 = Path("/usr/share/mricron/templates/ch2.nii.gz")
COLIN27_BET = Path("/usr/share/mricron/templates/ch2bet.nii.gz")
ITK_T1 = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz")
ITK_T1_STRIP = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1RawSkullStrip.nii.gz")


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/setup.sh (it installs the real test data)")
    return path


@pytest.fixture(scope="session")
def colin27() -> Volume:
    return read_volume(_require(COLIN27))


@pytest.fixture(scope="session")
def colin27_brain_mask() -> Volume:
    v = read_volume(_require(COLIN27_BET))
    return v.with_array((v.array > 0).astype(np.uint8))


@pytest.fixture(scope="session")
def itk_t1() -> Volume:
    return read_volume(_require(ITK_T1))


@pytest.fixture(scope="session")
def itk_t1_brain_mask() -> Volume:
    v = read_volume(_require(ITK_T1_STRIP))
    return v.with_array((v.array > 0).astype(np.uint8))


@pytest.fixture(scope="session")
def colin27_crop(colin27) -> Volume:
    """A small real crop (48x40x32) for tests where size does not matter; origin moved to keep it in place."""
    return crop(colin27, (60, 90, 80), (32, 40, 48))


def crop(volume: Volume, start_kji, size_kji) -> Volume:
    """A sub-block of ``volume`` at the same physical position."""
    k, j, i = start_kji
    dk, dj, di = size_kji
    origin = volume.lps_points([[i, j, k]])[0]
    return Volume(volume.array[k:k + dk, j:j + dj, i:i + di].copy(), volume.spacing, origin, volume.direction)


def rotation(axis, degrees: float) -> np.ndarray:
    """Rotation matrix about ``axis`` (LPS) by ``degrees``."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(degrees)
    x, y, z = axis
    c, s, t = np.cos(a), np.sin(a), 1 - np.cos(a)
    return np.array([[t*x*x + c, t*x*y - s*z, t*x*z + s*y],
                     [t*x*y + s*z, t*y*y + c, t*y*z - s*x],
                     [t*x*z - s*y, t*y*z + s*x, t*z*z + c]])


def geometry_variants(volume: Volume) -> dict[str, Volume]:
    """The same voxels under different geometries: original, oblique, flipped (det < 0), anisotropic.

    These relabel geometry (no resampling), which is what I/O and bridge round trips need.
    """
    oblique = rotation([1, 2, 3], 23.0) @ volume.direction
    flipped = volume.direction @ np.diag([1.0, -1.0, 1.0])  # J axis reversed: det < 0
    return {
        "original": volume,
        "oblique": Volume(volume.array, volume.spacing, volume.origin + [3.25, -7.5, 11.125], oblique),
        "flipped": Volume(volume.array, volume.spacing, volume.origin, flipped),
        "anisotropic": Volume(volume.array, [0.7, 1.3, 2.9], volume.origin, rotation([0, 0, 1], -11.0) @ flipped),
    }


def assert_same_physical(a: Volume, b: Volume, tol_mm: float = 1e-6) -> None:
    """Assert ``a`` and ``b`` hold the same voxel values at the same LPS positions (within ``tol_mm``).

    Works when one is stored with another axis order or sign (a reader may flip K): every voxel centre
    of ``a`` must land on a voxel centre of ``b`` holding the same value.
    """
    assert a.array.size == b.array.size, f"voxel counts differ: {a.array.shape} vs {b.array.shape}"
    ka, ja, ia = a.array.shape
    corners = np.array([[i, j, k] for i in (0, ia - 1) for j in (0, ja - 1) for k in (0, ka - 1)], float)
    in_b = b.ijk_indices(a.lps_points(corners))  # a's corner centres in b's index space
    np.testing.assert_allclose(in_b, np.round(in_b), atol=tol_mm / b.spacing.min(), err_msg="grids do not align")
    in_b = np.round(in_b).astype(int)
    assert (in_b.min(axis=0) == 0).all() and (in_b.max(axis=0) == np.array(b.size_ijk) - 1).all(), "extents differ"
    # a's I, J and K steps seen in b's index space: a signed permutation
    steps = np.round(b.ijk_indices(a.lps_points([[1, 0, 0], [0, 1, 0], [0, 0, 1]]))
                     - b.ijk_indices(a.lps_points([[0, 0, 0]]))).astype(int)
    arr = a.array.transpose(2, 1, 0)  # I,J,K
    perm = []
    for axis, step in enumerate(steps):
        nz = np.flatnonzero(step)
        assert len(nz) == 1 and abs(step[nz[0]]) == 1, f"axes are not a signed permutation: {steps}"
        perm.append(int(nz[0]))
        if step[nz[0]] < 0:
            arr = np.flip(arr, axis=axis)
    arr = np.transpose(arr, np.argsort(perm))  # b's I,J,K
    np.testing.assert_array_equal(arr.transpose(2, 1, 0), b.array)


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to the first ``keep`` fraction of its bytes (a download or copy that stopped early)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:int(len(data) * keep)])
    return Path(path)
