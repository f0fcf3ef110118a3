"""Finding the DICOM images in a folder (recursively) and grouping them by series.

A file is DICOM when it has the ``DICM`` magic at byte 128. Files without it are tried with pydicom's
``force`` only when their name looks like DICOM (no extension, ``.dcm``, ``.dicom``, ``.ima`` or a numeric
extension, as in UID-named files); other files (``.txt``, ``.json``, images, ...) are ignored, as are hidden
files and folders. Only image objects count (SOP classes named "... Image Storage"): DICOMDIR, SEG, RTSTRUCT,
RT Dose and reports are passed over. A file that claims to be DICOM but cannot be read is an error naming it.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pydicom
from pydicom.uid import UID

from medai.errors import MedAIError

#: Names worth a forced read although the file lacks the DICM magic.
_DICOM_LIKE_SUFFIXES = ("", ".dcm", ".dicom", ".ima")
#: Names that promise DICOM: such a file that cannot be read is an error, not something to pass over.
_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


@dataclass(frozen=True)
class DicomHeader:
    """A DICOM file and its header (read without pixel data)."""

    path: Path
    dataset: pydicom.Dataset

    @property
    def sop_class(self) -> str:
        """The SOP class name, e.g. 'CT Image Storage' (the UID itself when pydicom does not know it)."""
        uid = self.dataset.get("SOPClassUID") or self.dataset.file_meta.get("MediaStorageSOPClassUID") or ""
        return UID(str(uid)).name if uid else "unknown SOP class"

    @property
    def is_image(self) -> bool:
        return "Image Storage" in self.sop_class

    @property
    def series_uid(self) -> str:
        return str(self.dataset.get("SeriesInstanceUID", ""))


def read_header(path: Path, required: bool = False) -> Optional[DicomHeader]:
    """The header of ``path`` if it is a DICOM file, else None (or an error when ``required``)."""
    try:
        with open(path, "rb") as stream:
            has_magic = stream.read(132)[128:] == b"DICM"
    except OSError as error:
        raise MedAIError(f"cannot be read ({error.strerror or error})", path) from None
    suffix = path.suffix.lower()
    promised = required or has_magic or suffix in _DICOM_SUFFIXES
    if not (promised or suffix in _DICOM_LIKE_SUFFIXES or suffix[1:].isdigit()):
        return None
    try:
        with warnings.catch_warnings():
            if not has_magic:
                warnings.simplefilter("ignore")  # a forced read of a non-DICOM file warns about nonsense
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=not has_magic)
    except Exception as error:  # pydicom raises many exception types on damaged or foreign files
        if promised:
            raise _unreadable(path, has_magic, first_line(error)) from None
        return None
    if not has_magic and "SOPClassUID" not in ds:
        if promised:
            raise _unreadable(path, has_magic, f"no DICOM header in its {path.stat().st_size} bytes; truncated?")
        return None
    return DicomHeader(path, ds)


def _unreadable(path: Path, has_magic: bool, detail: str) -> MedAIError:
    """The error for a file that had to be DICOM; a foreign extension gets the list of formats instead."""
    suffix = path.suffix.lower()
    if not has_magic and not (suffix in _DICOM_LIKE_SUFFIXES or suffix[1:].isdigit()):
        return MedAIError("is not in a format MedAI reads (NIfTI, NRRD, MetaImage, PNG, DICOM)", path)
    return MedAIError(f"is not a readable DICOM file ({detail})", path)


def image_headers_in(folder: Path) -> list[DicomHeader]:
    """The DICOM image headers found below ``folder``; errors when there is nothing to read."""
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise MedAIError("is an empty folder (no files to read)", folder)
    headers = [h for h in (read_header(p) for p in files) if h is not None]
    images = [h for h in headers if h.is_image]
    if not images:
        others = sorted({h.sop_class for h in headers})
        found = f"; it holds only {', '.join(others)}" if others else ""
        raise MedAIError(f"holds no DICOM images ({len(files)} file{'s' if len(files) > 1 else ''} looked at{found})", folder)
    return images


def choose_series(headers: list[DicomHeader], folder: Path, series_uid: Optional[str]) -> list[DicomHeader]:
    """The headers of one series: the only one, or ``series_uid``; otherwise an error listing the series."""
    series: dict[str, list[DicomHeader]] = defaultdict(list)
    for header in headers:
        series[header.series_uid].append(header)
    if series_uid is not None:
        if series_uid not in series:
            raise MedAIError(f"holds no series {series_uid}; it holds {_listing(series)}", folder)
        return series[series_uid]
    if len(series) > 1:
        raise MedAIError(f"holds {len(series)} DICOM series; choose one with --series UID (series_uid=): {_listing(series)}", folder)
    return next(iter(series.values()))


def _listing(series: dict[str, list[DicomHeader]]) -> str:
    """One line: each series' UID, modality, description and file count."""
    parts = []
    for uid, headers in sorted(series.items()):
        ds = headers[0].dataset
        description = str(ds.get("SeriesDescription", "")).strip()
        parts.append(f"{uid or '(no SeriesInstanceUID)'} {ds.get('Modality', '?')} \"{description}\" ({len(headers)} files)")
    return "; ".join(parts)


def first_line(error: Exception) -> str:
    """The first line of an exception's message (pydicom's run over several)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
