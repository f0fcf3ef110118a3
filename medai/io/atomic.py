"""Writing so that nobody ever sees a half-written file or folder at its final name."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from medai.errors import MedAIError, PathLike


def atomic_target(path: Path) -> Path:
    """A temporary name beside ``path`` that keeps its extension (so writers pick the same format)."""
    return path.with_name(f".{os.getpid()}.partial.{path.name}")


@contextmanager
def staging_folder(parent: Path) -> Iterator[Path]:
    """A new hidden folder inside ``parent`` to write into; it is removed, with anything left in it, on exit.

    Being on the same file system as the destination, its content can be moved in place with ``os.replace``.
    """
    folder = Path(tempfile.mkdtemp(prefix=".medai-partial-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish_files(staged: Path, main_file: str, folder: Path) -> None:
    """Move every file of the ``staged`` folder into ``folder``, ``main_file`` last.

    For formats with a header and a separate data file (``.mhd`` + ``.zraw``, ``.nhdr`` + ``.raw.gz``) the header
    (``main_file``) appears only once its data is in place.
    """
    names = sorted(p.name for p in staged.iterdir() if p.name != main_file) + [main_file]
    for name in names:
        os.replace(staged / name, folder / name)


def publish_folder(staged: Path, folder: Path) -> None:
    """Move the ``staged`` folder to ``folder``, which must not exist or be empty."""
    if folder.is_dir():
        folder.rmdir()  # empty (checked by the caller); rename cannot replace a folder portably
    os.replace(staged, folder)


def write_atomically(path: PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary path)`` and move the result to ``path``: the file appears complete or not at all."""
    target = Path(path)
    if not target.parent.is_dir():
        raise MedAIError("the folder to write into does not exist", target.parent)
    if target.is_dir():
        raise MedAIError("is a folder; give a file name to write to", target)
    partial = atomic_target(target)
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    return target
