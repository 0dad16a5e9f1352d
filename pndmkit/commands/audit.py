"""``pndmkit audit TARGET``: measure somebody else's sampler against exact ground truth.

``TARGET`` is ``module:function`` (a k-diffusion-style sampler), ``diffusers:ClassName`` (a scheduler;
``--config key=value``, repeatable, sets its options) or a pndmkit method name. Prints what
:func:`pndmkit.studies.audit.audit` measured (orders on two intervals, model calls per step, exactness for
data at one point, consistency with the schedule, the recovered weights and the first order condition they
break); ``--json`` prints the report as one JSON object.
"""

from __future__ import annotations

import argparse
import ast
import json

from pndmkit.errors import UsageError


def _config_value(text: str) -> object:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_config(items: list[str] | None) -> dict:
    """``["solver_order=3", "algorithm_type=dpmsolver++"]`` -> ``{"solver_order": 3, ...}`` (values as Python
    literals where they parse, ``true``/``false``/``none`` too, else strings); a key given twice raises
    ``UsageError``."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UsageError("config", f"--config {item!r} must be KEY=VALUE with KEY a scheduler option name")
        key = key.strip()
        if key in out:
            raise UsageError("config", f"--config {item!r}: {key} is already set ({key}={out[key]!r}); give each "
                                       f"option once")
        out[key] = _config_value(value)
    return out


def run(args: argparse.Namespace) -> int:
    from pndmkit.studies.audit import audit

    report = audit(args.target, quick=args.quick, **parse_config(args.config))
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit", help="measure a sampler's order, cost, exactness and schedule against exact ground truth",
        description="Audit a sampler you did not write: k-diffusion-style sampler (module:function), diffusers "
                    "scheduler (diffusers:ClassName) or pndmkit method name. Orders on a smooth interval and on one "
                    "ending where abar = 1, model calls per step (counted), exactness for data at one point, "
                    "consistency with the schedule, and the weights it actually used (pndmkit.studies.audit).")
    p.add_argument("target", metavar="TARGET", help="module:function, diffusers:ClassName, a method name, or a "
                                                    "diffusers folder or cached hub id (the scheduler it ships, on "
                                                    "its saved config)")
    p.add_argument("--config", action="append", metavar="KEY=VALUE", default=None,
                   help="a diffusers scheduler option, e.g. solver_order=3 (repeatable; default: none)")
    p.add_argument("--quick", action="store_true", help="fewer step counts (seconds; orders less reliable)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)
