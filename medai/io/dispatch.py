"""Pick the reader or writer for a path."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from medai.errors import MedAIError, PathLike
from medai.volume import Volume

#: Extensions handled by SimpleITK's file readers, longest first so ``.nii.gz`` wins over ``.gz``.
ITK_EXTENSIONS = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: What ``write_volume`` writes; ``.seg.nrrd`` files are segmentations, written by ``medai.slicer``.
WRITE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
IMAGE2D_EXTENSIONS = (".png",)


def image_kind(path: PathLike) -> str:
    """'itk', 'image2d', 'dicom' (a file) or 'dicom-folder', judged from the path alone."""
    p = Path(path)
    if p.is_dir():
        return "dicom-folder"
    name = p.name.lower()
    if name.endswith(ITK_EXTENSIONS):
        return "itk"
    if name.endswith(IMAGE2D_EXTENSIONS):
        return "image2d"
    return "dicom"


def read_volume(path: PathLike, series_uid: Optional[str] = None) -> Volume:
    """Read an image file or a DICOM series folder into a Volume (K,J,I array, LPS geometry).

    NIfTI/NRRD/MetaImage files go to SimpleITK, ``.png`` files to :func:`medai.io.image2d.read_image2d`, and
    folders and any other file to :func:`medai.io.dicom.series.read.read_dicom` (``series_uid`` picks one series in
    a folder that holds several). Every problem is a :class:`MedAIError` naming the file.
    """
    p = Path(path)
    if not p.exists():
        raise MedAIError("no such file or folder", p)
    kind = image_kind(p)
    if kind == "itk":
        from medai.io.itk_files import read_itk_file

        return read_itk_file(p)
    if kind == "image2d":
        from medai.io.image2d import read_image2d

        return read_image2d(p)
    from medai.io.dicom.series.read import read_dicom

    return read_dicom(p, series_uid=series_uid)


def write_volume(volume: Volume, path: PathLike) -> Path:
    """Write ``volume`` to ``path`` by its extension (NIfTI, NRRD, MHA/MHD). Returns the path written.

    The file appears only once it is complete. DICOM series are written by
    :func:`medai.io.dicom.series.write.write_dicom_series`.
    """
    p = Path(path)
    if p.name.lower().endswith(".seg.nrrd"):
        raise MedAIError("is a segmentation file name; write_volume writes images (segmentations are saved by medai.slicer)", p)
    if not p.name.lower().endswith(WRITE_EXTENSIONS) or p.is_dir():
        raise MedAIError(f"cannot write this format; use one of {', '.join(WRITE_EXTENSIONS)}", p)
    if not p.parent.is_dir():
        raise MedAIError("the folder to write into does not exist", p.parent)
    from medai.io.itk_files import write_itk_file

    return write_itk_file(volume, p)
