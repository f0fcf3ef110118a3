"""``medai models``: list the catalog, show a card, fetch a card's URL weights on explicit request."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("models", help="list models, show a model card, or fetch its weights")
    parser.add_argument("action", nargs="?", default="list", choices=("list", "show", "fetch"))
    parser.add_argument("model", nargs="?", help="model id or card path (for show and fetch)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from medai.errors import MedAIError
    from medai.models import get_card, list_cards

    if args.action == "list":
        for card in list_cards():
            print(f"{card.id:24} {card.task:15} {card.modality:4} {card.name} [{card.license}]")
        return 0
    if not args.model:
        raise MedAIError(f"'medai models {args.action}' needs a model id")
    card = get_card(args.model)
    if args.action == "show":
        print(card.summary())
        print(json.dumps(card.data, indent=2))
        return 0
    from medai.models.weights import fetch_weights

    paths = fetch_weights(card)
    print("\n".join(str(p) for p in paths) or f"model '{card.id}' has no weights to download")
    return 0
