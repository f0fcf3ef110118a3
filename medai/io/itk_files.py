"""NIfTI, NRRD and MetaImage files through SimpleITK (which reports geometry in LPS).

Geometry is kept exactly: NRRD writes ``space directions``/``space origin`` and MetaImage its transform in
full precision; NIfTI keeps qform and sform (with qfac = -1 for a left-handed direction), in float32.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from medai.errors import MedAIError
from medai.io.atomic import publish_files, staging_folder
from medai.io.native_stderr import native_stderr_held
from medai.io.nifti_check import nifti_nan_mask, require_complete_nifti
from medai.sitk_image import sitk_from_volume, volume_from_sitk
from medai.volume import Volume

#: "[nrrd] _nrrdEncodingRaw_read: ", "MetaImage: M_ReadElementsData: ": who said it, not what is wrong.
_SPEAKER = re.compile(r"^(\[\w+\]\s*)?([A-Za-z_]\w*:\s+)*")

#: What ITK's MetaImage and NRRD readers say when the data ends early.
_TRUNCATION_SIGNS = ("not read completely", "but received", "fread got only")

def itk_problem(error: Exception, printed: list[str]) -> str:
    """The useful part of an ITK failure: what it printed on stderr, else the last line of its exception."""
    if "Unable to determine ImageIO reader" in str(error):
        return "its content is not in a format MedAI reads (NIfTI, NRRD, MetaImage)"
    lines = printed or [ln for ln in str(error).splitlines() if ln.strip()] or [type(error).__name__]
    text = "; ".join(_SPEAKER.sub("", ln.strip()) for ln in (lines if printed else lines[-1:]))
    return text.strip("; ") or type(error).__name__


def read_itk_file(path: Path) -> Volume:
    """Read a 3D (or 2D, as one slice) scalar image; errors name the file and say what is wrong."""
    import SimpleITK as sitk

    if path.name.lower().endswith((".nii", ".nii.gz")):
        require_complete_nifti(path)
    printed: list[str] = []
    try:
        with native_stderr_held(printed):
            image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        problem = itk_problem(error, printed)
        verdict = "is truncated" if any(sign in problem for sign in _TRUNCATION_SIGNS) else "is not a readable image"
        raise MedAIError(f"{verdict} ({problem})", path) from None
    volume = volume_from_sitk(image, path)
    if path.name.lower().endswith((".nii", ".nii.gz")) and np.issubdtype(volume.array.dtype, np.floating):
        nans = nifti_nan_mask(path)
        if nans is not None and nans.size == volume.array.size:
            volume.array[nans.reshape(volume.array.shape)] = np.nan
    return volume


def write_itk_file(volume: Volume, path: Path) -> Path:
    """Write ``volume`` (compressed) to ``path``; nothing appears at ``path`` unless the whole file was written.

    The file (and, for ``.mhd``/``.nhdr``, its data file) is written in a staging folder beside ``path`` under its
    final name, so that a header names the right data file, then moved in place, header last.
    """
    import SimpleITK as sitk

    printed: list[str] = []
    with staging_folder(path.parent) as staged:
        try:
            with native_stderr_held(printed):
                sitk.WriteImage(sitk_from_volume(volume), str(staged / path.name), useCompression=True)
        except (RuntimeError, TypeError) as error:
            raise MedAIError(f"could not write ({itk_problem(error, printed)})", path) from None
        publish_files(staged, path.name, path.parent)
    return path
