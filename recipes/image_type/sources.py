"""The real CT and MR images the built-in ``image-type`` model learns from, with their class and provenance.

Every image is on this machine after ``scripts/setup.sh`` (Debian packages, PyPI packages, pyradiomics' source
archive). Classes are modality x region: ``CT_head``, ``CT_body``, ``MR_head``, ``MR_body`` ("body" is anything
below the head: chest, abdomen, shoulder). The labels come from what each file is documented to be (and, for
the pydicom files, from looking at them); the model itself only ever sees pixels.
"""

from __future__ import annotations

import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from medai.io import read_volume
from medai.volume import Volume

ROOT = Path(__file__).resolve().parents[2]
PYRADIOMICS = ROOT / ".data" / "pyradiomics"
ITK_DATA = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
CRANIUM = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")
CLASSES = ["CT_body", "CT_head", "MR_body", "MR_head"]


@dataclass(frozen=True)
class Source:
    """One real image (a volume, a few frames or one slice): what it is, where it comes from, how to read it."""

    name: str
    modality: str
    region: str
    load: Callable[[], Volume]
    origin: str
    licence: str

    @property
    def label(self) -> str:
        return f"{self.modality}_{self.region}"


def _file(path: Path) -> Callable[[], Volume]:
    return lambda: read_volume(path)


def _pydicom(name: str) -> Callable[[], Volume]:
    def load() -> Volume:
        from pydicom.data import get_testdata_file

        return read_volume(get_testdata_file(name))
    return load


def _multiframe_without_positions(name: str) -> Callable[[], Volume]:
    """pydicom's emri_small: 10 MR frames without per-frame positions (medai's reader refuses to place them)."""
    def load() -> Volume:
        import pydicom
        from pydicom.data import get_testdata_file

        ds = pydicom.dcmread(get_testdata_file(name))
        frames = ds.pixel_array.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1)) + float(
            getattr(ds, "RescaleIntercept", 0))
        return Volume(frames, [1.0, 1.0, float(getattr(ds, "SpacingBetweenSlices", 1.0))])
    return load


def _cranium() -> Volume:
    """InVesalius' Cranium.inv3: a tar.gz with a raw int16 matrix (K,J,I) and a plist with its spacing.

    Axes, checked by eye: K runs foot to head (slice 100 is the vertex), J posterior to anterior (the head rest is
    at low J, the face at high J); I is taken as right to left, as in DICOM.
    """
    import plistlib

    with tempfile.TemporaryDirectory() as tmp, tarfile.open(CRANIUM) as archive:
        members = {Path(m.name).name: m for m in archive.getmembers()}
        archive.extractall(tmp, members=[members["main.plist"], members["matrix.dat"]], filter="data")
        folder = Path(tmp) / Path(members["main.plist"].name).parent
        info = plistlib.loads((folder / "main.plist").read_bytes())
        shape = info["matrix"]["shape"]
        array = np.fromfile(folder / info["matrix"]["filename"], dtype=info["matrix"]["dtype"]).reshape(shape)
    return Volume(array, info["spacing"], np.zeros(3), np.diag([1.0, -1.0, 1.0]))


SOURCES = [
    # CT, head
    Source("cranium", "CT", "head", _cranium, "Debian invesalius-examples: Cranium.inv3 (ProMED CT 0051)", "GPL-2"),
    Source("ct_ect", "CT", "head", _pydicom("eCT_Supplemental.dcm"), "pydicom-data eCT_Supplemental.dcm (2 frames)", "MIT (pydicom-data)"),
    Source("ct_j2k_head", "CT", "head", _pydicom("J2K_pixelrep_mismatch.dcm"), "pydicom J2K_pixelrep_mismatch.dcm (head CT slice)", "MIT (pydicom)"),
    # CT, body
    Source("lung1", "CT", "body", _file(PYRADIOMICS / "lung1_image.nrrd"), "pyradiomics 3.0.1 data/lung1_image.nrrd (chest CT)", "BSD-3"),
    Source("lung2", "CT", "body", _file(PYRADIOMICS / "lung2_image.nrrd"), "pyradiomics 3.0.1 data/lung2_image.nrrd (chest CT)", "BSD-3"),
    Source("ct_small", "CT", "body", _pydicom("CT_small.dcm"), "pydicom CT_small.dcm (thoracic spine slice)", "MIT (pydicom)"),
    Source("ct_pancreas", "CT", "body", _pydicom("explicit_VR-UN.dcm"), "pydicom-data explicit_VR-UN.dcm (abdominal CT slice)", "MIT (pydicom-data)"),
    # MR, head
    Source("colin27", "MR", "head", _file(Path("/usr/share/mricron/templates/ch2.nii.gz")), "Debian mricron-data ch2.nii.gz (Colin27 T1)", "BSD-3 (Debian)"),
    Source("itk_t1", "MR", "head", _file(ITK_DATA / "KmeansTest_T1UCharRaw.nii.gz"), "Debian insighttoolkit5-examples KmeansTest_T1UCharRaw", "Apache-2.0"),
    Source("brain1", "MR", "head", _file(PYRADIOMICS / "brain1_image.nrrd"), "pyradiomics 3.0.1 data/brain1_image.nrrd", "BSD-3"),
    Source("brain2", "MR", "head", _file(PYRADIOMICS / "brain2_image.nrrd"), "pyradiomics 3.0.1 data/brain2_image.nrrd", "BSD-3"),
    Source("emri_small", "MR", "head", _multiframe_without_positions("emri_small.dcm"), "pydicom emri_small.dcm (10 frames)", "MIT (pydicom)"),
    # MR, body
    Source("breast1", "MR", "body", _file(PYRADIOMICS / "breast1_image.nrrd"), "pyradiomics 3.0.1 data/breast1_image.nrrd", "BSD-3"),
    Source("mr_shoulder", "MR", "body", _pydicom("MR2_UNCI.dcm"), "pydicom-data MR2_UNCI.dcm (shoulder slice)", "MIT (pydicom-data)"),
    Source("mr_abdomen", "MR", "body", _pydicom("MR-SIEMENS-DICOM-WithOverlays.dcm"), "pydicom-data MR-SIEMENS-DICOM-WithOverlays.dcm (abdominal slice)", "MIT (pydicom-data)"),
    Source("mr_fat", "MR", "body", _file(ITK_DATA / "FatMRISlice.png"), "Debian insighttoolkit5-examples FatMRISlice.png (abdominal slice)", "Apache-2.0"),
]

#: Real images never trained on (a non-commercial licence, or a region nobody documented): only ever classified.
HELD_OUT = [
    Source("ct_693", "CT", "head", _pydicom("693_UNCI.dcm"), "pydicom-data 693_UNCI.dcm (a CQ500 head CT slice)",
           "pydicom-data MIT; CQ500 itself is CC BY-NC-SA 4.0, so it is not trained on"),
    Source("mr_small", "MR", "unknown", _pydicom("MR_small.dcm"), "pydicom MR_small.dcm (64x64 MR crop, region unknown)",
           "MIT (pydicom)"),
]


def by_name(name: str) -> Source:
    """The source called ``name``."""
    for source in SOURCES + HELD_OUT:
        if source.name == name:
            return source
    raise KeyError(name)
