"""``medai models``: list the catalog, show a card, fetch URL weights, install or remove a package or MONAI bundle."""

from __future__ import annotations

import argparse
import json

ACTIONS = ("list", "show", "fetch", "install", "remove")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models", help="list, show, fetch, install or remove models",
        description="List the models (built-in and installed), show a model card, fetch a card's URL weights, "
                    "install a model package or MONAI bundle (folder or .zip) into the user catalog, or remove one.")
    parser.add_argument("action", nargs="?", default="list", choices=ACTIONS)
    parser.add_argument("model", nargs="?",
                        help="model id, card or package path, or bundle (show, fetch); PATH (install); ID (remove)")
    parser.add_argument("--id", dest="model_id", help="install under this id instead of the card's")
    parser.add_argument("--force", action="store_true", help="install: replace a model installed under the same id")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="install/show: set a card field the bundle does not state, e.g. "
                             "--set inference.roi_size=[96,96,96] (VALUE is JSON, else text); repeatable")
    parser.add_argument("--overrides", dest="overrides_file", metavar="JSON",
                        help="install/show: a JSON object of card fields to set (the --set values win)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from medai.errors import MedAIError
    from medai.models.bundle import parse_overrides
    from medai.models.catalog import get_card, is_builtin, list_cards

    if args.action == "list":
        for card in list_cards():
            where = "built-in" if is_builtin(card) else "installed"
            print(f"{card.id:24} {card.task:15} {card.modality:4} {where:9} {card.name} [{card.license}]")
        return 0
    if not args.model:
        raise MedAIError(f"'medai models {args.action}' needs a model {'path' if args.action == 'install' else 'id'}")
    overrides = parse_overrides(args.overrides, args.overrides_file)
    if args.action == "install":
        from medai.models.install import install_model

        card = install_model(args.model, args.model_id, args.force, overrides)
        print(f"installed '{card.id}' into {card.folder}")
        return 0
    if args.action == "remove":
        from medai.models.install import remove_model

        print(f"removed '{args.model}' ({remove_model(args.model)})")
        return 0
    if overrides:
        from medai.models.bundle import card_from_bundle, is_bundle

        if not is_bundle(args.model):
            raise MedAIError("--set and --overrides apply to MONAI bundles (and to install)", args.model)
        card = card_from_bundle(args.model, overrides)
    else:
        card = get_card(args.model)
    if args.action == "show":
        print(card.summary())
        print(json.dumps(card.data, indent=2))
        return 0
    from medai.models.weights import fetch_weights

    paths = fetch_weights(card)
    print("\n".join(str(p) for p in paths) or f"model '{card.id}' has no weights to download")
    return 0
