"""The catalog: built-in cards and packages shipped with MedAI plus the user's installed models.

Built-in: ``medai/models/cards/*.json`` and the model packages ``medai/models/packages/<package>/card.json``.
The user folder is ``$MEDAI_HOME/models`` (default ``~/.medai/models``); each card there is
``<folder>/<anything>.json`` or ``<folder>/<package>/card.json`` (``medai models install`` puts packages and
MONAI bundles there, a bundle with the card derived from it). A user card with a built-in id overrides the
built-in one. :func:`get_card` also takes a path: a card file, a package folder, or a MONAI bundle folder or zip.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from medai.errors import MedAIError, PathLike
from medai.home import user_models_dir
from medai.models.card import ModelCard, load_card

BUILTIN_DIR = Path(__file__).with_name("cards")
BUILTIN_PACKAGES_DIR = Path(__file__).with_name("packages")


def _card_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.json")) + sorted(folder.glob("*/card.json"))
    # hidden names are installations in progress (staging folders) or being removed
    return [f for f in files if f.is_file() and not f.relative_to(folder).parts[0].startswith(".")]


def list_cards(user_dir: Optional[PathLike] = None) -> list[ModelCard]:
    """All cards, built-in first, each id once (a user card overrides a built-in one)."""
    cards: dict[str, ModelCard] = {}
    builtin = _card_files(BUILTIN_DIR) + [f for f in _card_files(BUILTIN_PACKAGES_DIR) if f.name == "card.json"]
    for path in builtin + _card_files(Path(user_dir) if user_dir else user_models_dir()):
        card = load_card(path)
        cards[card.id] = card
    return list(cards.values())


def is_builtin(card: ModelCard) -> bool:
    """Whether ``card`` ships with MedAI (as opposed to one the user installed)."""
    return card.folder is not None and any(card.folder.resolve().is_relative_to(folder.resolve())
                                           for folder in (BUILTIN_DIR, BUILTIN_PACKAGES_DIR))


def get_card(model: PathLike, user_dir: Optional[PathLike] = None) -> ModelCard:
    """A card by id, or by path: a card file, a package folder (``card.json``), a MONAI bundle folder or zip."""
    from medai.models.bundle import card_from_bundle, is_bundle

    text = os.fspath(model)
    candidate = Path(text)
    if candidate.suffix.lower() in (".json", ".zip") or os.sep in text or candidate.is_dir():
        if candidate.is_dir() and not (candidate / "card.json").is_file():
            if is_bundle(candidate):
                return card_from_bundle(candidate)
            raise MedAIError("not a model package (no card.json) nor a MONAI bundle (no configs/metadata.json)",
                             candidate)
        if candidate.suffix.lower() == ".zip":
            return card_from_bundle(candidate)
        return load_card(candidate / "card.json" if candidate.is_dir() else candidate)
    for card in list_cards(user_dir):
        if card.id == text:
            return card
    known = ", ".join(card.id for card in list_cards(user_dir))
    raise MedAIError(f"unknown model; known models: {known}", text)
