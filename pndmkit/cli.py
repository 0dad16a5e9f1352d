"""The ``pndmkit`` command line (also ``python -m pndmkit``).

Each sub-command lives in its own module under :mod:`pndmkit.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit code). This module only dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

__all__ = ["main", "build_parser"]

#: sub-command modules, in the order ``pndmkit --help`` lists them
COMMANDS = ("methods", "order", "coefficients", "compare", "sample", "train")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="pndmkit",
        description="Pseudo numerical methods for diffusion models: samplers, exact coefficients, ground truth.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"pndmkit.commands.{name}")
        except ModuleNotFoundError as exc:  # a sub-command whose optional dependency is missing
            if exc.name and exc.name.startswith("pndmkit.commands"):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
