"""``pndmkit methods [--json]``: list every registered method."""

from __future__ import annotations

import argparse
import json

from pndmkit.methods import METHODS


def rows() -> list[dict[str, object]]:
    """One dictionary per method: name, gradient, transfer, NFE formula, declared order, reference."""
    return [{"name": m.name, "gradient": m.gradient, "transfer": m.transfer, "nfe": m.nfe_formula(),
             "order": m.order, "reference": m.reference} for m in METHODS.values()]


def run(args: argparse.Namespace) -> int:
    table = rows()
    if args.json:
        print(json.dumps({"methods": table}, indent=2))
        return 0
    cols = ("name", "order", "nfe", "transfer", "gradient")
    width = {c: max(len(c), *(len(str(r[c] if r[c] is not None else "-")) for r in table)) for c in cols}
    print("  ".join(c.ljust(width[c]) for c in cols))
    for r in table:
        print("  ".join(str(r[c] if r[c] is not None else "-").ljust(width[c]) for c in cols))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list every method with gradient part, transfer, NFE and order",
                       description="List every registered method: gradient part, transfer, NFE for N steps, "
                                   "declared order.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
