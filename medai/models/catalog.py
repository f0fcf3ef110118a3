"""The catalog: built-in cards shipped with MedAI plus cards in the user's model folder.

The user folder is ``$MEDAI_HOME/models`` (default ``~/.medai/models``); each card there is
``<folder>/<anything>.json`` or ``<folder>/<package>/card.json``. A user card with a built-in id
overrides the built-in one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from medai.errors import MedAIError, PathLike
from medai.models.card import ModelCard, load_card

BUILTIN_DIR = Path(__file__).with_name("cards")


def medai_home() -> Path:
    """Where MedAI keeps user models and downloads: ``$MEDAI_HOME`` or ``~/.medai``."""
    return Path(os.environ.get("MEDAI_HOME") or Path.home() / ".medai")


def user_models_dir() -> Path:
    return medai_home() / "models"


def _card_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.json")) + sorted(folder.glob("*/card.json"))
    return [f for f in files if f.is_file()]


def list_cards(user_dir: Optional[PathLike] = None) -> list[ModelCard]:
    """All cards, built-in first, each id once (a user card overrides a built-in one)."""
    cards: dict[str, ModelCard] = {}
    for path in _card_files(BUILTIN_DIR) + _card_files(Path(user_dir) if user_dir else user_models_dir()):
        card = load_card(path)
        cards[card.id] = card
    return list(cards.values())


def get_card(model: PathLike, user_dir: Optional[PathLike] = None) -> ModelCard:
    """A card by id, or by path to a card file or a folder holding ``card.json``."""
    text = os.fspath(model)
    candidate = Path(text)
    if candidate.suffix == ".json" or os.sep in text or candidate.is_dir():
        return load_card(candidate / "card.json" if candidate.is_dir() else candidate)
    for card in list_cards(user_dir):
        if card.id == text:
            return card
    known = ", ".join(card.id for card in list_cards(user_dir))
    raise MedAIError(f"unknown model; known models: {known}", text)
