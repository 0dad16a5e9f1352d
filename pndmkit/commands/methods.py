"""``pndmkit methods [--json | --markdown]``: list every registered method (built-in and registered by users)."""

from __future__ import annotations

import argparse
import json

from pndmkit.methods import METHODS
from pndmkit.studies.reports import methods_markdown_table


def rows() -> list[dict[str, object]]:
    """One dictionary per method: name, kind, gradient, transfer, NFE formula, declared order, reference."""
    return [m.describe() for m in METHODS.values()]


def run(args: argparse.Namespace) -> int:
    table = rows()
    if args.json:
        print(json.dumps({"methods": table}, indent=2))
        return 0
    if args.markdown:
        print(methods_markdown_table(list(METHODS)))
        return 0
    cols = ("name", "kind", "order", "nfe", "transfer", "gradient")
    width = {c: max(len(c), *(len(str(r[c] if r[c] is not None else "-")) for r in table)) for c in cols}
    print("  ".join(c.ljust(width[c]) for c in cols))
    for r in table:
        print("  ".join(str(r[c] if r[c] is not None else "-").ljust(width[c]) for c in cols))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list every method with gradient part, transfer, NFE and order",
                       description="List every registered method: gradient part, transfer, NFE for N steps, "
                                   "declared order. Methods of your own are listed too: register them "
                                   "(pndmkit.register_method) in a module named in PNDMKIT_PLUGINS or an entry "
                                   "point of the group pndmkit.methods (docs/protocol.md; README.md, \"Ten lines\").")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--markdown", action="store_true", help="print the README's methods table")
    p.set_defaults(func=run)
