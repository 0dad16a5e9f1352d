"""``pndmkit coefficients``: exact multistep weights, variable-step weights, order conditions, local errors.

Sub-commands (each takes ``--json``):

* ``adams-bashforth K``, ``adams-moulton K``, ``bdf K`` -- exact weights with order, error constant
  (Lambert's normalisation) and zero-stability; ``lmm --alpha=A0,..,Ak --beta=B0,..,Bk`` the same for any
  linear multistep method (coefficients oldest first).
* ``variable --nodes T0,T1,... --step A,B [--variable t|s|lambda --schedule NAME]`` -- the weights of the
  Lagrange interpolant through the nodes (newest first) integrated over the step from ``A`` to ``B``,
  divided by the step length, so that they sum to 1. Nodes and step are *times* ``t``; with
  ``--variable s`` or ``lambda`` they are mapped through the schedule first and the weights are those
  of the interpolant in that variable (what a sampler whose transfer is exact in ``s`` needs). Values
  are exact rationals (``7/10``, ``0.7``, ``1``); with ``--variable t`` the weights are exact too.
* ``tableau NAME`` -- order and order-condition residuals of a shipped Butcher tableau.
* ``local-error --weights t-uniform|s-exact K`` -- leading local error of a pseudo Adams step.

Examples
--------
``pndmkit coefficients adams-bashforth 4`` prints ``55/24, -59/24, 37/24, -9/24``, order 4 and error
constant ``251/720``; ``pndmkit coefficients variable --nodes 7/10,1,3/2 --step 7/10,1/4`` prints
``37/16, -33/20, 27/80``.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, Callable, Sequence

import sympy as sp

from pndmkit import theory as co
from pndmkit.errors import UsageError, blame
from pndmkit.schedules import SCHEDULES, get_schedule



def _rationals(text: str) -> list[sp.Rational]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 7/10,1,3/2, got {text!r}")
    try:
        return [co.as_rational(v, "value") for v in values]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _step(text: str) -> list[sp.Rational]:
    values = _rationals(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"--step takes the start and end of the step, A,B; got {text!r}")
    return values


#: largest K of the exact multistep weights (and nodes, coefficients of lmm / variable): BDF 30 takes a few
#: seconds in exact arithmetic, and no method beyond it is of practical use (BDF is not zero-stable past 6)
MAX_K = 30
#: largest K of ``local-error``: its symbolic expansion grows fast (K = 16: about 7 s, K = 30: minutes)
MAX_LOCAL_ERROR_K = 16


def _count(limit: int) -> Callable[[str], int]:
    """argparse type: an integer K in ``[1, limit]``."""
    def parse(text: str) -> int:
        try:
            k = int(text)
        except ValueError:
            k = 0
        if not 1 <= k <= limit:
            raise argparse.ArgumentTypeError(f"K must be an integer in [1, {limit}], got {text!r}")
        return k
    return parse


def _at_most(limit: int, what: str) -> Callable[[str], list[sp.Rational]]:
    """argparse type: at most ``limit`` comma-separated exact numbers."""
    def parse(text: str) -> list[sp.Rational]:
        values = _rationals(text)
        if len(values) > limit:
            raise argparse.ArgumentTypeError(f"at most {limit} {what}, got {len(values)}")
        return values
    return parse


def _common(weights: Sequence[sp.Rational]) -> tuple[list[int], int]:
    denominator = math.lcm(*(int(w.q) for w in weights))
    return [int(w * denominator) for w in weights], denominator


def _lmm_report(method: co.LinearMultistepMethod, label: str, weights: Sequence[sp.Rational] | None) -> dict:
    out: dict[str, Any] = {"method": label, "name": method.name}
    if weights is not None:
        numerators, denominator = _common(weights)
        out.update(weights=[str(w) for w in weights], numerators=numerators, denominator=denominator,
                   floats=[float(w) for w in weights])
    out.update(alpha=[str(a) for a in method.alpha], beta=[str(b) for b in method.beta], steps=method.steps,
               order=method.order, error_constant=str(method.error_constant),
               zero_stable=bool(method.is_zero_stable), explicit=bool(method.is_explicit))
    return out


def _print_lmm(report: dict) -> None:
    kind = "explicit" if report["explicit"] else "implicit"
    print(f"{report['method']} ({report['name']}, {kind}, {report['steps']} step(s))")
    if "weights" in report:
        d = report["denominator"]
        print("weights, newest first: " + ", ".join(f"{n}/{d}" if d != 1 else str(n) for n in report["numerators"]))
        print(f"  = ({', '.join(str(n) for n in report['numerators'])}) / {d}")
        print("  = " + ", ".join(repr(f) for f in report["floats"]))
    print(f"alpha (oldest first): {', '.join(report['alpha'])}")
    print(f"beta  (oldest first): {', '.join(report['beta'])}")
    stable = "zero-stable" if report["zero_stable"] else "NOT zero-stable (root condition fails)"
    print(f"order {report['order']}, error constant {report['error_constant']}, {stable}")


def _run_lmm(args: argparse.Namespace) -> int:
    k = args.k
    if args.kind == "adams-bashforth":
        method, weights, label = co.LinearMultistepMethod.adams_bashforth(k), co.adams_bashforth(k), "Adams-Bashforth"
    elif args.kind == "adams-moulton":
        method, weights, label = co.LinearMultistepMethod.adams_moulton(k), co.adams_moulton(k), "Adams-Moulton"
    elif args.kind == "bdf":
        method, weights, label = co.LinearMultistepMethod.bdf(k), None, "BDF"
    else:
        try:
            method = co.LinearMultistepMethod(args.alpha, args.beta, name="LMM")
        except ValueError as exc:
            raise UsageError(("alpha", "beta"), str(exc)) from None
        weights, label, k = None, "linear multistep method", method.steps
    report = _lmm_report(method, label, weights)
    report["k"] = k
    if args.json:
        print(json.dumps(report))
    else:
        _print_lmm(report)
    return 0


def _run_variable(args: argparse.Namespace) -> int:
    nodes, (start, end) = args.nodes, args.step
    report: dict[str, Any] = {"variable": args.variable, "schedule": args.schedule,
                              "nodes": [str(v) for v in nodes], "step": [str(start), str(end)]}
    if args.variable == "t":
        with blame("nodes", "step"):
            weights = co.lagrange_weights(nodes, start, end)
        report.update(exact=True, weights=[str(w) for w in weights], floats=[float(w) for w in weights])
    else:
        if args.schedule is None:
            raise UsageError(("schedule", "variable"), f"--variable {args.variable} needs --schedule "
                                                       f"({', '.join(SCHEDULES)})")
        schedule = get_schedule(args.schedule)
        times = [float(v) for v in [*nodes, start, end]]
        mapping = schedule.s if args.variable == "s" else schedule.lam
        with blame("nodes", "step", errors=(ValueError,)):
            schedule.check_time(times, "--nodes/--step")
            weights = co.variable_step_weights(times[:-2], times[-2], times[-1], args.variable, schedule)
        report.update(exact=False, mapped_nodes=[float(mapping(t)) for t in times[:-2]],
                      mapped_step=[float(mapping(times[-2])), float(mapping(times[-1]))],
                      weights=[repr(float(w)) for w in weights], floats=[float(w) for w in weights])
    report["sum"] = str(sum(co.as_rational(w, "w") for w in report["weights"])) if report["exact"] else repr(
        math.fsum(report["floats"]))
    report["exact_for_degree_below"] = len(nodes)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"nodes (newest first, t): {', '.join(report['nodes'])}; step t: {start} -> {end}")
    if not report["exact"]:
        print(f"in {args.variable} of {args.schedule}: nodes {', '.join(f'{v:.10g}' for v in report['mapped_nodes'])}; "
              f"step {report['mapped_step'][0]:.10g} -> {report['mapped_step'][1]:.10g}")
    print("weights (normalised by the step length, newest first): " + ", ".join(report["weights"]))
    if report["exact"]:
        print("  = " + ", ".join(repr(f) for f in report["floats"]))
    print(f"sum {report['sum']}; exact for polynomials of degree < {len(nodes)} in {args.variable}")
    return 0


def _run_tableau(args: argparse.Namespace) -> int:
    from pndmkit.tableaus import TABLEAUS

    if args.name not in TABLEAUS:
        raise UsageError("name", f"unknown tableau {args.name!r}; known: {', '.join(TABLEAUS)}")
    tableau = TABLEAUS[args.name]
    order = co.tableau_order(tableau)
    residuals = co.order_conditions(tableau, min(order + 1, 2 * tableau.stages))
    report = {"tableau": args.name, "stages": tableau.stages, "order": order,
              "conditions": [{"tree": co.format_tree(t), "order": co.tree_order(t), "gamma": co.tree_density(t),
                              "residual": str(r)} for t, r in residuals.items()]}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"tableau {args.name}: {tableau.stages} stage(s), order {order}")
    print("tree            |t|  gamma  residual Phi(t) - 1/gamma")
    for c in report["conditions"]:
        print(f"{c['tree']:<15} {c['order']:>3}  {c['gamma']:>5}  {c['residual']}")
    return 0


def _run_local_error(args: argparse.Namespace) -> int:
    leading = co.pseudo_local_error(args.weights, args.k)
    h = sp.Symbol("h")
    power = int(sp.degree(leading, h)) if leading != 0 else None
    report = {"weights": args.weights, "k": args.k, "leading_term": str(leading), "power": power,
              "symbols": "h: step in t; s1, s2, ...: derivatives of s(t); e0, e1, ...: derivatives of eps in t; "
                         "error = numerical - exact y-step, DDIM transfer y' = y + (s' - s) e"}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"pseudo Adams step, k = {args.k}, {args.weights} weights, DDIM transfer")
    print(f"leading local error (numerical - exact): {leading}")
    print(report["symbols"])
    return 0


def _kind(kinds: argparse._SubParsersAction, name: str, help_: str, func: Callable[[argparse.Namespace], int],
          description: str | None = None) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` with ``--json`` and its ``func``."""
    q = kinds.add_parser(name, help=help_, description=description or help_)
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=func)
    return q


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``pndmkit coefficients`` and its sub-commands to ``sub``."""
    p = sub.add_parser("coefficients", help="exact multistep weights, variable-step weights, order conditions",
                       description="pndmkit coefficients: exact multistep weights, variable-step weights, order "
                                   "conditions, local errors.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    for kind, help_ in (("adams-bashforth", "explicit Adams weights (k nodes, order k)"),
                        ("adams-moulton", "implicit Adams weights (k nodes incl. the new point, order k)"),
                        ("bdf", "backward differentiation formula with k steps")):
        _kind(kinds, kind, help_, _run_lmm).add_argument("k", type=_count(MAX_K), help=f"K, an integer in [1, {MAX_K}]")
    q = _kind(kinds, "lmm", "order, error constant and zero-stability of sum_j alpha_j y_{n+j} = h sum_j beta_j f_{n+j}",
              _run_lmm, "Coefficients oldest first, j = 0..k; write a list that starts with a minus sign as "
                        "--alpha=-1,1.")
    coefficients = _at_most(MAX_K + 1, f"coefficients (k <= {MAX_K})")
    q.add_argument("--alpha", type=coefficients, required=True, help="alpha_0..alpha_k, e.g. --alpha=-1,1 (k <= 30)")
    q.add_argument("--beta", type=coefficients, required=True, help="beta_0..beta_k, e.g. --beta=1/2,1/2")
    q.set_defaults(k=None)
    q = _kind(kinds, "variable", "weights of the interpolant through arbitrary nodes over an arbitrary step",
              _run_variable, "Nodes (newest first) and the step A,B are times t; the weights integrate the Lagrange "
                             "interpolant in the chosen variable over the step and are divided by its length (sum 1).")
    q.add_argument("--nodes", type=_at_most(MAX_K, "nodes"), required=True,
                   help=f"comma-separated times, newest first (7/10,1,3/2); at most {MAX_K}")
    q.add_argument("--step", type=_step, required=True, help="start and end time of the step, A,B (7/10,1/4)")
    q.add_argument("--variable", choices=co.VARIABLES, default="t",
                   help="integration variable: t, s = sqrt((1-abar)/abar) or lambda = -log s (default t)")
    q.add_argument("--schedule", choices=list(SCHEDULES), default=None, help="schedule for --variable s|lambda")
    q = _kind(kinds, "tableau", "order conditions of a shipped Butcher tableau", _run_tableau)
    q.add_argument("name", help="tableau name (euler, heun, midpoint, ralston, rk3, rk4, rk38)")
    q = _kind(kinds, "local-error", "leading local error of a pseudo Adams step with the DDIM transfer",
              _run_local_error)
    q.add_argument("k", type=_count(MAX_LOCAL_ERROR_K), help=f"number of history nodes K, in [1, {MAX_LOCAL_ERROR_K}]")
    q.add_argument("--weights", choices=("t-uniform", "s-exact"), default="t-uniform",
                   help="t-uniform: fixed AB weights (PLMS); s-exact: interpolant on the s nodes")
