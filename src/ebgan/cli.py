"""The ``ebgan`` command: parse, build, call. Each command group lives in ebgan.commands.*."""

from __future__ import annotations

import argparse
import importlib
import sys

from ebgan.errors import EbganError

# One module per command group; each has register(subparsers) setting ``func``.
COMMANDS = [
    "ebgan.commands.train",
    "ebgan.commands.sample",
    "ebgan.commands.compare",
    "ebgan.commands.energy",
    "ebgan.commands.anomaly",
    "ebgan.commands.eval",
    "ebgan.commands.classifier",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ebgan", description="Energy-based GANs (Zhao, Mathieu & LeCun 2017) and the GANs they are measured against."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except EbganError as e:
        print(f"ebgan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ebgan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
