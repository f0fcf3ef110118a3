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


# --- DICOM SEG and RTSTRUCT cases (Testing/test_dicom_seg.py, Testing/test_rtstruct.py) ----------------------------
# Real structures (a brain mask, a lung tumour outline) on real images, cropped to non-square matrices, plus small
# asymmetric structures that break careless writers: an L with a hole holding an island, ten voxels over two
# slices, a one-voxel-wide diagonal line and a single voxel. Each is written as a DICOM series under every geometry
# variant, with shuffled file names and descending instance numbers.

from dataclasses import dataclass  # noqa: E402  (appended section)

PYRADIOMICS_DATA = Path(__file__).resolve().parent.parent / ".data" / "pyradiomics"


@pytest.fixture(scope="session")
def pyradiomics_lung():
    """pyradiomics 3.0.1's lung1 and lung2: real chest CTs (HU) with tumour outlines (label 1), {name: (image, label)}."""
    return {name: (read_volume(_require(PYRADIOMICS_DATA / f"{name}_image.nrrd")),
                   read_volume(_require(PYRADIOMICS_DATA / f"{name}_label.nrrd"))) for name in ("lung1", "lung2")}


def _terminology(category, type_, modifier=None, region=None):
    from medai.labels import Code, Terminology

    code = lambda c: None if c is None else Code(*c)  # noqa: E731
    return Terminology(code(category), code(type_), code(modifier), code(region))


ANATOMICAL = ("123037004", "SCT", "Anatomical Structure")


def derived_test_labels(real_name: str):
    """Labels 1..5 of :func:`add_test_structures`; label 3 has no terminology (writers fall back to Tissue)."""
    from medai.labels import SegmentLabel

    if real_name == "Brain":
        real = SegmentLabel(1, "Brain", (250 / 255, 250 / 255, 225 / 255), _terminology(ANATOMICAL, ("12738006", "SCT", "Brain")))
    else:
        real = SegmentLabel(1, "Tumour", (0.8, 0.2, 0.1), _terminology(("49755003", "SCT", "Morphologically Altered Structure"),
                                                                       ("108369006", "SCT", "Neoplasm"),
                                                                       region=("39607008", "SCT", "Lung")))
    return [
        real,
        SegmentLabel(2, "L with hole", (0.1, 0.6, 0.9), _terminology(ANATOMICAL, ("64033007", "SCT", "Kidney"),
                                                                     modifier=("7771000", "SCT", "Left"))),
        SegmentLabel(3, "ten voxels", (0.2, 0.9, 0.2)),
        SegmentLabel(4, "diagonal line", (0.9, 0.9, 0.1), _terminology(ANATOMICAL, ("59820001", "SCT", "Blood vessel"))),
        SegmentLabel(5, "single voxel", (1.0, 0.0, 1.0), _terminology(ANATOMICAL, ("59441001", "SCT", "Lymph node"))),
    ]


def add_test_structures(labels: np.ndarray) -> np.ndarray:
    """Labels 2..5 drawn over a K,J,I label array (K >= 4, J >= 40, I >= 32) holding a real structure as 1."""
    out = np.array(labels, dtype=np.uint8)
    count, rows, columns = out.shape
    shape_l = np.zeros((14, 15), bool)
    shape_l[:, :7] = True  # the upright
    shape_l[9:, :] = True  # the foot
    shape_l[2:7, 1:6] = False  # a 5x5 hole
    shape_l[4, 3] = True  # an island in the hole
    for k in (1, 2, 3):
        out[k, k:k + 14, 1:16][shape_l] = 2  # shifted a row per slice
    plus = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
    for k in (0, 1):
        for dj, di in plus:
            out[k, rows // 2 + dj, 4 + di] = 3
    for t in range(12):
        out[count - 2, rows - 15 + t, columns - 15 + t] = 4
    out[count - 1, rows - 2, 1] = 5
    return out


@dataclass
class DerivedCase:
    """A real image with labels, written as a DICOM series, and what a reader makes of that series."""

    written: Volume  #: the image as written (geometry of the variant)
    written_labels: np.ndarray  #: K,J,I labels on ``written``'s grid
    files: list  #: the series files in ``written``'s K order
    folder: Path
    source: Volume  #: read_dicom of the folder
    label_map: Volume  #: the labels on ``source``'s grid
    labels: list  #: SegmentLabel 1..5
    modality: str


#: name: (fixture image key, crop start K,J,I, crop size K,J,I, modality, what label 1 is)
DERIVED_CASES = {
    "mr-itk": ("itk_t1", (24, 30, 8), (8, 56, 40), "MR", "Brain"),
    "mr-colin27": ("colin27", (80, 60, 10), (8, 56, 40), "MR", "Brain"),
    "ct-lung2": ("lung2", (14, 335, 320), (13, 56, 72), "CT", "Tumour"),
    "ct-lung1": ("lung1", (31, 343, 180), (5, 56, 64), "CT", "Tumour"),
}


@pytest.fixture(scope="session")
def derived_case(tmp_path_factory, itk_t1, itk_t1_brain_mask, colin27, colin27_brain_mask, pyradiomics_lung):
    """``derived_case(case, variant)``: a :class:`DerivedCase` (cached for the session)."""
    from medai.io.dicom.series.read import read_dicom
    from medai.io.dicom.series.write import write_dicom_series
    from medai.resample import resample_to_grid

    images = {"itk_t1": (itk_t1, itk_t1_brain_mask), "colin27": (colin27, colin27_brain_mask),
              "lung1": pyradiomics_lung["lung1"], "lung2": pyradiomics_lung["lung2"]}
    cache: dict = {}

    def make(case: str, variant: str) -> DerivedCase:
        if (case, variant) not in cache:
            key, start, size, modality, real_name = DERIVED_CASES[case]
            image, mask = images[key]
            cropped = crop(image, start, size)
            real = crop(mask, start, size).array > 0
            written = geometry_variants(cropped)[variant]
            labels = add_test_structures(real)
            folder = tmp_path_factory.mktemp(f"{case}-{variant}") / "series"
            files = write_dicom_series(written, folder, modality=modality, shuffle_names=True,
                                       descending_instance_numbers=True, seed=11,
                                       patient={"PatientName": "Test^Derived", "PatientID": f"ID-{case}"})
            source = read_dicom(folder)
            label_map = resample_to_grid(written.with_array(labels), source, "nearest")
            assert_same_physical(written.with_array(labels), label_map, tol_mm=1e-6)
            cache[case, variant] = DerivedCase(written, labels, files, folder, source, label_map,
                                               derived_test_labels(real_name), modality)
        return cache[case, variant]

    return make
