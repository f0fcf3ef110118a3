"""Zip archives from outside (model bundles, downloaded model folders): checked before a byte is extracted.

Entries that would land outside the extraction folder (absolute paths, ``..``, drive letters) and symbolic links
are refused with one line naming the entry; extraction goes to a hidden staging folder that is published whole
(or not at all) at its final name.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from pathlib import Path

from medai.errors import MedAIError
from medai.io.atomic import staging_folder


def open_checked_zip(path: Path, what: str = "archive") -> zipfile.ZipFile:
    """``path`` opened as a zip whose every entry stays inside the folder it is extracted to."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise MedAIError(f"not a readable zip archive ({error})", path) from None
    for member in archive.infolist():
        name = member.filename
        parts = Path(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            archive.close()
            raise MedAIError(f"refused: zip entry '{name}' points outside the {what}", path)
        if stat.S_ISLNK(member.external_attr >> 16):
            archive.close()
            raise MedAIError(f"refused: zip entry '{name}' is a symbolic link", path)
    return archive


def member_sha256(archive: zipfile.ZipFile, name: str) -> str:
    """The SHA256 of entry ``name``, read from the archive (nothing extracted)."""
    digest = hashlib.sha256()
    with archive.open(name) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_once(archive: zipfile.ZipFile, target: Path) -> Path:
    """Extract ``archive`` into folder ``target`` unless it is already there; ``target`` appears only complete.

    Two processes extracting the same archive to the same target at once both succeed.
    """
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        with staging_folder(target.parent) as staged:
            archive.extractall(staged)
            try:
                os.replace(staged, target)
            except OSError:
                if not target.is_dir():
                    raise
    return target
