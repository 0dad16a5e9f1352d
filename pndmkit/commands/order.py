"""``pndmkit order``: measured convergence orders of the registered methods against exact ground truth.

Runs :func:`pndmkit.convergence.run_study` on a built-in Gaussian-mixture problem and prints, per method,
the declared order, the order fitted on the asymptotic range it picked, the error at each step count
and the NFE; ``--json`` prints one JSON object instead, ``--plot FILE`` writes error against NFE.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from pndmkit.convergence import DEFAULT_STEPS, SCHEDULES, MethodResult, Study, make_study, run_study
from pndmkit.grids import GRIDS
from pndmkit.methods import METHODS
from pndmkit.problems import PROBLEMS


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if len(values) < 2 or any(v < 1 for v in values) or values != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"need at least two increasing step counts >= 1, got {text!r}")
    return values


def _methods(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    return names


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def table(study: Study, results: dict[str, MethodResult], steps: Sequence[int]) -> str:
    """The plain-text report: fixed-step methods in one table, adaptive ones below it."""
    head = (f"problem {study.problem_name} (d={study.problem.dim}), schedule {study.schedule_name}, "
            f"grid {study.grid}, t {study.t_start:g} -> {study.t_end:.4g}, batch {len(study.x_T)}, "
            f"error = RMS of x_N - x_ref (reference error {study.reference_error:.1e})")
    cols = ["method", "declared", "measured", "fit N"] + [f"err@{n}" for n in steps] + ["NFE"]
    rows = []
    for r in results.values():
        if r.adaptive:
            continue
        fit = f"{r.fit_range[0]}-{r.fit_range[1]}" if r.fit_range else "-"
        nfe = f"{r.nfe[0]}..{r.nfe[-1]}"
        rows.append([r.name, _fmt(r.declared_order, "d"), _fmt(r.measured_order), fit]
                    + [f"{e:.2e}" for e in r.errors] + [nfe])
    width = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)]
    lines = [head, "", "  ".join(c.ljust(w) for c, w in zip(cols, width))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, width)) for row in rows]
    notes = [f"  {r.name}: {r.note}" for r in results.values() if r.note]
    adaptive = [r for r in results.values() if r.adaptive]
    for r in adaptive:
        lines += ["", f"{r.name} (adaptive; error per NFE, slope {_fmt(r.nfe_slope)}):"]
        tols = r.tolerances or [None] * len(r.nfe)
        lines += [f"  tol {_fmt(t, '.0e')}: NFE {k}, error {e:.2e}" for t, k, e in zip(tols, r.nfe, r.errors)]
    if notes:
        lines += ["", "notes:"] + notes
    return "\n".join(lines)


def to_json(study: Study, results: dict[str, MethodResult]) -> dict[str, Any]:
    """One JSON-ready object; ``methods`` maps each name to its :meth:`MethodResult.to_dict`."""
    return {
        "problem": study.problem_name, "dim": study.problem.dim, "schedule": study.schedule_name,
        "grid": study.grid, "t_start": study.t_start, "t_end": study.t_end, "batch": len(study.x_T),
        "error": "RMS over batch and dimensions of the end point minus the exact PF-ODE end point",
        "reference_error": study.reference_error,
        "methods": {name: r.to_dict() for name, r in results.items()},
    }


def plot(study: Study, results: dict[str, MethodResult], path: str) -> None:
    """Log-log plot of error against NFE, with reference slopes NFE^-1, ^-2, ^-4."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    colors = plt.get_cmap("tab20").colors
    for i, r in enumerate(results.values()):
        # dashed: the s-consistent variants; dotted: adaptive
        style = "--" if r.name.endswith("-s") or r.name in ("ipndm-v",) else ":" if r.adaptive else "-"
        label = f"{r.name} ({_fmt(r.measured_order)})" if r.measured_order is not None else r.name
        ax.loglog(r.nfe, r.errors, style, color=colors[i % len(colors)], marker="os^vD"[i % 5], ms=3, label=label)
    nfe = np.array([min(min(r.nfe) for r in results.values()), max(max(r.nfe) for r in results.values())], float)
    top = max(max(r.errors) for r in results.values())
    for p in (1, 2, 4):
        ax.loglog(nfe, top * (nfe / nfe[0]) ** -p, color="0.7", lw=0.8)
        ax.annotate(f"NFE$^{{-{p}}}$", (nfe[1], top * (nfe[1] / nfe[0]) ** -p), color="0.5", fontsize=8)
    ax.set_xlabel("NFE")
    ax.set_ylabel("RMS error vs exact PF-ODE end point")
    ax.set_title(f"{study.problem_name}, {study.schedule_name}, {study.grid} grid, t_end={study.t_end:.3g}")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    tty = sys.stderr.isatty()

    def progress(msg: str) -> None:
        if tty:
            sys.stderr.write(f"\r\033[K{msg}")
            sys.stderr.flush()

    try:
        study = make_study(args.problem, args.schedule, grid=args.grid, t_start=args.t_start, t_end=args.t_end,
                           batch=args.batch, seed=args.seed)
    except ValueError as exc:
        print(f"pndmkit order: error: {exc}", file=sys.stderr)
        return 2
    results = run_study(study, args.methods, args.steps, progress=progress)
    if tty:
        sys.stderr.write("\r\033[K")
    if args.plot:
        plot(study, results, args.plot)
    if args.json:
        print(json.dumps(to_json(study, results), indent=2))
    else:
        print(table(study, results, args.steps))
        if args.plot:
            print(f"\nplot written to {args.plot}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "order", help="measure convergence orders against exact Gaussian-mixture ground truth",
        description="Error of each method's end point against the exact probability-flow trajectory of a "
                    "Gaussian-mixture problem, at several step counts; fitted order on the asymptotic range.")
    p.add_argument("--methods", type=_methods, default=None, help="comma-separated method names (default: all)")
    p.add_argument("--problem", choices=sorted(PROBLEMS), default="gmm2d", help="built-in problem (gmm2d)")
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="linear-vp", help="noise schedule (linear-vp)")
    p.add_argument("--grid", choices=[g for g in GRIDS if g not in ("leading", "trailing")], default="uniform",
                   help="grid kind (uniform: equal steps in t)")
    p.add_argument("--steps", type=_int_list, default=list(DEFAULT_STEPS),
                   help="comma-separated increasing step counts (default: %(default)s)")
    p.add_argument("--t-start", type=float, default=None, help="start time (default: the schedule's)")
    p.add_argument("--t-end", type=float, default=None,
                   help="end time (default: where s = sqrt((1-abar)/abar) = 0.1, see pndmkit.convergence)")
    p.add_argument("--batch", type=int, default=8, help="number of start points x_T (8)")
    p.add_argument("--seed", type=int, default=0, help="seed of x_T (0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE", default=None, help="write a log-log plot of error vs NFE")
    p.set_defaults(func=run)
