"""MedAI's folder on the user's machine and the places inside it.

``$MEDAI_HOME`` (default ``~/.medai``) holds the user's installed models and the caches. Every module that
needs one of these places asks here, so none of them has to import the catalog or each other for a path.
"""

from __future__ import annotations

import os
from pathlib import Path


def medai_home() -> Path:
    """Where MedAI keeps user models and downloads: ``$MEDAI_HOME`` or ``~/.medai``."""
    return Path(os.environ.get("MEDAI_HOME") or Path.home() / ".medai")


def user_models_dir() -> Path:
    """The user's catalog: installed cards, packages and bundles (``medai models install``)."""
    return medai_home() / "models"


def cache_dir(kind: str) -> Path:
    """The cache of ``kind`` (``weights``, ``bundles``, ``onnx``, ...): files MedAI can make or fetch again."""
    return medai_home() / "cache" / kind
