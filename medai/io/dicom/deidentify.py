"""De-identifying DICOM sets with dicognito, consistently across images, SEG and RTSTRUCT.

One ``dicognito.anonymizer.Anonymizer`` handles every dataset of a set. dicognito maps each UID, name, ID and
date through one keyed randomiser, so the same original value becomes the same new value in every file: a SEG's
``ReferencedSOPInstanceUID`` and an RTSTRUCT's contour image references keep pointing at the de-identified images,
and its ``FrameOfReferenceUID`` still matches theirs. De-identifying the files of a set one anonymiser at a time
breaks those links.

What dicognito does (``Anonymizer.describe_actions()``): replaces every UID except class and transfer syntax
UIDs, every person name, patient and other IDs, addresses and institution/equipment identifiers; shifts every
date and date-time by one random offset per anonymiser (62 to 730 days back, so intervals are kept); removes a
few attributes (occupation, telephone numbers, religious preference, …); sets PatientIdentityRemoved and
DeidentificationMethod. On top of that, MedAI:

* keeps UIDs that name DICOM-defined things rather than instances (values under ``1.2.840.10008.``, coding
  scheme and context UIDs), which dicognito would otherwise replace;
* removes private attributes (vendors put names and IDs there) and the free-text comment attributes
  that often carry them (:data:`FREE_TEXT_REMOVED`);
* refuses images whose ``BurnedInAnnotation`` is ``YES``: text in the pixels is out of reach of any tag-level
  method;
* names output files ``NNN_<Modality>/NNNNN.dcm`` (series, then instance order), since original file and
  folder names often hold patient names or IDs; files that are not DICOM (and DICOMDIR indexes, whose
  paths would be wrong) are not copied.

Descriptions (StudyDescription, SeriesDescription, …) are kept as they are: check them when they may hold names.
A ``seed`` makes the mapping reproducible; whoever holds the seed can recompute it, so keep it secret.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from medai.errors import MedAIError, PathLike
from medai.io.atomic import publish_folder, staging_folder

#: Free-text attributes removed on top of dicognito's actions.
FREE_TEXT_REMOVED = ("PatientComments", "AdditionalPatientHistory", "ImageComments", "StudyComments",
                     "RequestedProcedureComments", "ImagingServiceRequestComments")
#: UID attributes that name coding schemes and templates, not instances: kept.
KEPT_UID_KEYWORDS = ("CodingSchemeUID", "ContextUID", "MappingResourceUID", "ContextGroupExtensionCreatorUID",
                     "TemplateExtensionCreatorUID", "ImplementationClassUID", "PrivateInformationCreatorUID")
DICOM_ROOT_UID = "1.2.840.10008."
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


def deidentify_datasets(datasets: Iterable[Dataset], *, seed: Optional[str] = None) -> None:
    """De-identify ``datasets`` in place with one anonymiser, so references between them still resolve.

    Refuses (:class:`MedAIError`) a dataset whose BurnedInAnnotation is YES, before changing any dataset.
    """
    datasets = list(datasets)
    for ds in datasets:
        _refuse_burned_in(ds, None)
    anonymizer = new_anonymizer(seed)
    for ds in datasets:
        _deidentify(anonymizer, ds)


def deidentify_folder(src: PathLike, dst: PathLike, *, seed: Optional[str] = None) -> list[Path]:
    """De-identify every DICOM file under ``src`` into the new folder ``dst``; returns the files written.

    ``src`` is only read. ``dst`` must not exist or be empty, must not lie inside ``src``, and its parent must
    exist; it appears only once every file is written. This is what ``medai deidentify FOLDER -o OUT`` runs.
    """
    source = Path(src)
    if not source.is_dir():
        raise MedAIError("no such folder", source)
    return deidentify_files([source], dst, seed=seed)


def deidentify_files(sources: Sequence[PathLike], dst: PathLike, *, seed: Optional[str] = None) -> list[Path]:
    """De-identify DICOM files and folders (searched recursively) together into ``dst``; returns the files written.

    One anonymiser covers all ``sources``, so give a series together with the SEG and RTSTRUCT files made from it
    (e.g. ``[series_folder, seg_file, rtstruct_file]``). Sources are only read; ``dst`` as for
    :func:`deidentify_folder`. Output files are grouped into one folder per series: ``NNN_<Modality>/NNNNN.dcm``.
    """
    target = Path(dst)
    inputs = [Path(p) for p in sources]
    if not inputs:
        raise MedAIError("no DICOM files or folders given to de-identify")
    _check_target(target, inputs)
    files = _dicom_files(inputs)
    if not files:
        raise MedAIError("holds no DICOM files to de-identify", inputs[0] if len(inputs) == 1 else None)
    for entry in files:
        _refuse_burned_in(entry.header, entry.path)
    layout = _layout(files)
    anonymizer = new_anonymizer(seed)
    with staging_folder(target.parent) as staged:
        for entry in files:
            try:
                ds = pydicom.dcmread(entry.path, force=entry.forced)
            except (InvalidDicomError, OSError, ValueError, EOFError) as error:
                raise MedAIError(f"cannot be read as DICOM ({error})", entry.path) from error
            _deidentify(anonymizer, ds)
            out = staged / layout[entry.path]
            out.parent.mkdir(exist_ok=True)
            try:
                pydicom.dcmwrite(out, ds, enforce_file_format=True)
            except (ValueError, AttributeError) as error:
                raise MedAIError(f"cannot be written back as a DICOM file after de-identification ({error})", entry.path) from error
        publish_folder(staged, target)
    return [target / layout[entry.path] for entry in sorted(files, key=lambda e: layout[e.path])]


def new_anonymizer(seed: Optional[str] = None):
    """dicognito's Anonymizer with MedAI's additions (kept registry UIDs, free text and private tags removed)."""
    from dicognito.anonymizer import Anonymizer
    from dicognito.unwantedelements import UnwantedElementsStripper

    anonymizer = Anonymizer(seed=seed)
    anonymizer.add_element_handler(UnwantedElementsStripper(*FREE_TEXT_REMOVED))
    anonymizer.add_element_handler(_KeepDefinedUIDs())  # first: runs before dicognito's UID replacement
    return anonymizer


def _deidentify(anonymizer, ds: Dataset) -> None:
    ds.remove_private_tags()
    anonymizer.anonymize(ds)


class _KeepDefinedUIDs:
    """A dicognito element handler that claims (so leaves unchanged) UIDs that do not identify instances."""

    def __call__(self, dataset: Dataset, element) -> bool:
        if element.VR != "UI" or not element.value:
            return False
        values = element.value if isinstance(element.value, (list, pydicom.multival.MultiValue)) else [element.value]
        return element.keyword in KEPT_UID_KEYWORDS or all(str(v).startswith(DICOM_ROOT_UID) for v in values)

    def describe_actions(self) -> Iterator[str]:
        yield f"Keep UIDs under {DICOM_ROOT_UID} and {', '.join(KEPT_UID_KEYWORDS)}"


@dataclass
class _Entry:
    path: Path
    header: Dataset
    forced: bool  # a file without the DICOM preamble and file meta (older writers, some planning systems)


def _check_target(target: Path, inputs: list[Path]) -> None:
    if not target.parent.is_dir():
        raise MedAIError("the folder to write into does not exist", target.parent)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise MedAIError("exists and is not an empty folder; de-identified files go into a new folder", target)
    resolved = target.resolve()
    for source in inputs:
        if not source.exists():
            raise MedAIError("no such file or folder", source)
        if source.is_dir() and (resolved == source.resolve() or source.resolve() in resolved.parents):
            raise MedAIError("the output folder lies inside the folder being de-identified; write it elsewhere", target)


def _dicom_files(inputs: list[Path]) -> list[_Entry]:
    """Every DICOM file of the inputs (folders searched recursively), once each, with its header; DICOMDIRs skipped."""
    seen: set[Path] = set()
    entries = []
    for source in inputs:
        candidates = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        for path in candidates:
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            header, forced = _header(path)
            if header is None:
                if source == path:
                    raise MedAIError("is not a DICOM file", path)
                continue  # not DICOM: not copied
            if str(header.file_meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_CLASS:
                continue
            entries.append(_Entry(path, header, forced))
    return entries


def _header(path: Path) -> tuple[Optional[Dataset], bool]:
    """(header, read with force) of a DICOM file; (None, False) when it is not one.

    A file without the 128-byte preamble and file meta is accepted when, read with ``force``, it names its SOP
    class and instance; it is written back with a preamble and file meta.
    """
    try:
        return pydicom.dcmread(path, stop_before_pixels=True), False
    except InvalidDicomError:
        pass
    except (OSError, ValueError, EOFError, TypeError, KeyError, AttributeError):
        return None, False
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if header.get("SOPClassUID") and header.get("SOPInstanceUID"):
            return header, True
    except Exception:  # noqa: BLE001 - forced reads of arbitrary files fail in many ways; none of them is DICOM
        pass
    return None, False


def _layout(entries: list[_Entry]) -> dict[Path, str]:
    """Output names: ``NNN_<Modality>/NNNNN.dcm``, series ordered by (series number, modality), instances by number."""
    series: dict[str, list[_Entry]] = defaultdict(list)
    for entry in entries:
        series[str(entry.header.get("SeriesInstanceUID", ""))].append(entry)

    def number(ds: Dataset, keyword: str) -> int:
        try:
            return int(ds.get(keyword) or 0)
        except (TypeError, ValueError):
            return 0

    def series_key(uid: str) -> tuple:
        first = series[uid][0].header
        return (number(first, "SeriesNumber"), str(first.get("Modality", "")), str(series[uid][0].path))

    layout = {}
    for index, uid in enumerate(sorted(series, key=series_key), start=1):
        members = sorted(series[uid], key=lambda e: (number(e.header, "InstanceNumber"), str(e.path)))
        modality = "".join(ch for ch in str(members[0].header.get("Modality", "")) if ch.isalnum()) or "OT"
        for n, entry in enumerate(members, start=1):
            layout[entry.path] = os.path.join(f"{index:03d}_{modality}", f"{n:05d}.dcm")
    return layout


def _refuse_burned_in(ds: Dataset, path: Optional[Path]) -> None:
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise MedAIError("has BurnedInAnnotation YES: identifying text in the pixels cannot be removed by de-identifying attributes", path)
