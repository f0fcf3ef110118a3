"""``medai`` entry point: builds the sub-command parsers and turns MedAIError into one line.

Each sub-command lives in its own module under ``medai.cli`` and exposes ``add_parser(subparsers)``
returning the parser, with ``run(args) -> int`` set as its default ``func``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from medai import __version__
from medai.errors import MedAIError

#: Sub-command modules, in the order ``medai --help`` lists them.
COMMANDS = ("segment", "classify", "features", "convert", "info", "deidentify", "models", "demo", "evaluate", "train",
            "export_onnx")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="medai", description="Medical image segmentation and classification.")
    parser.add_argument("--version", action="version", version=f"medai {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"medai.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"medai.cli.{name}":
                continue  # a command not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MedAIError as error:
        if args.debug:
            raise
        print(f"medai: error: {error.one_line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("medai: cancelled", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``medai`` program: run :func:`main`, then exit without the interpreter's teardown.

    Unloading torch's modules at interpreter exit takes about half a second, a tenth of a whole segmentation
    run. Every output is complete and closed (files are written atomically) before ``main`` returns, so the
    streams and log handlers are flushed and the process ends at once.
    """
    import logging
    import os

    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
