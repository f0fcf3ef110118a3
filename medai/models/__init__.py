"""Model cards (what a model expects and produces), the catalog that lists them, and weight files."""

from medai.models.card import ModelCard, load_card
from medai.models.catalog import get_card, list_cards

__all__ = ["ModelCard", "load_card", "get_card", "list_cards"]
