"""Finding weight files and checking them: nothing is loaded before its SHA256 matches the card.

A weight entry names the file one of three ways: inside an installed Python distribution
(``distribution`` + ``path``), a path relative to the card's folder (or absolute), or a ``url``. A URL is
fetched only by :func:`fetch_weights`, on the user's explicit request, into the user cache; inference
never opens a network connection.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

from medai.errors import MedAIError
from medai.models.card import ModelCard
from medai.home import cache_dir as home_cache_dir


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where weights downloaded by :func:`fetch_weights` are kept, by SHA256."""
    return home_cache_dir("weights")


def _cached_path(entry: dict[str, Any]) -> Path:
    return cache_dir() / entry["sha256"] / Path(entry["url"].split("?")[0]).name


def locate_weight(card: ModelCard, role: str) -> Path:
    """The local path of weight ``role`` of ``card`` (not yet verified)."""
    entry = card.weights[role]
    if entry.get("distribution"):
        from importlib import metadata

        try:
            dist = metadata.distribution(entry["distribution"])
        except metadata.PackageNotFoundError:
            raise MedAIError(
                f"model '{card.id}' needs the Python package '{entry['distribution']}' for its weights; "
                f"install it (pip install --no-deps {entry['distribution']})") from None
        path = Path(dist.locate_file(entry["path"]))
    elif entry.get("path"):
        path = Path(entry["path"])
        if not path.is_absolute() and card.folder is not None:
            path = card.folder / path
    else:
        path = _cached_path(entry)
        if not path.exists():
            raise MedAIError(f"weights of model '{card.id}' are not downloaded; run: medai models fetch {card.id}")
    if not path.is_file():
        raise MedAIError(f"weight file '{role}' of model '{card.id}' is missing", path)
    return path


def verified_weight(card: ModelCard, role: str) -> Path:
    """The path of weight ``role`` after checking its SHA256 against the card; refuses a mismatch."""
    path = locate_weight(card, role)
    expected = card.weights[role]["sha256"]
    actual = sha256_of(path)
    if actual != expected:
        raise MedAIError(f"weight file of model '{card.id}' failed its SHA256 check (expected {expected[:12]}..., "
                         f"found {actual[:12]}...); refusing to load it", path)
    return path


def fetch_weights(card: ModelCard, progress: Optional[Callable[[int, int], None]] = None, timeout: float = 60.0) -> list[Path]:
    """Download the card's URL weights into the cache, checksummed; files already cached are kept.

    A download that fails or does not match its SHA256 leaves nothing in the cache.
    """
    paths = []
    for role, entry in card.weights.items():
        if not entry.get("url") or entry.get("distribution") or entry.get("path"):
            continue
        target = _cached_path(entry)
        if target.is_file() and sha256_of(target) == entry["sha256"]:
            paths.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(entry["url"], timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while block := response.read(1 << 20):
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
            if sha256_of(tmp) != entry["sha256"]:
                raise MedAIError(f"download of '{role}' for model '{card.id}' failed its SHA256 check", entry["url"])
            shutil.move(tmp, target)
        except OSError as error:
            raise MedAIError(f"download of '{role}' for model '{card.id}' failed ({error})", entry["url"]) from None
        finally:
            if tmp.exists():
                tmp.unlink()
        paths.append(target)
    return paths
