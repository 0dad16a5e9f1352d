"""``pndmkit grid optimize``: a method's grid optimised for an NFE budget on calibration noises, judged on held-out ones.

Runs :func:`pndmkit.studies.grid_opt.optimize` (:mod:`pndmkit.studies.grid_opt`) on a built-in Gaussian-mixture problem
(exact reference, seconds) or a network (``--model``, converged float64 reference, minutes; cached) and prints
the grid, its held-out error and that of every built-in grid kind; ``--json`` prints one object.
"""

from __future__ import annotations

import argparse
import json
import sys

from pndmkit.commands.args import MAX_STEPS, nonnegative_int, positive_int, step_count
from pndmkit.errors import UsageError
from pndmkit.methods import METHODS
from pndmkit.problems import PROBLEMS
from pndmkit.studies.grid_opt import DEFAULT_DEGREE


def _degree(text: str) -> int | None:
    if text == "free":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'free', got {text!r}") from None


def _start(text: str) -> str | list[float]:
    if "," not in text:
        return text
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a grid kind or comma-separated numbers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    import warnings

    from pndmkit.studies.grid_opt import GridFallbackWarning, optimize

    if (args.problem is None) == (args.model is None):
        raise UsageError(("problem", "model"), "give exactly one of --problem NAME or --model digits|PATH")
    if args.cache is not None and args.model is None:
        raise UsageError("cache", "--cache DIR holds a network's references; it needs --model (a --problem has "
                                  "exact ones and caches nothing)")
    if args.method not in METHODS:
        raise UsageError("method", f"unknown method {args.method!r}; known: {', '.join(METHODS)}")
    if args.model is not None and args.model in PROBLEMS:
        raise UsageError("model", f"{args.model!r} is a built-in problem, not a network; use --problem {args.model}")
    try:
        with warnings.catch_warnings():  # the report says it, in its last line
            warnings.simplefilter("ignore", GridFallbackWarning)
            result = optimize(args.method, args.problem or args.model, args.nfe, calibration=args.calibration,
                              heldout=args.heldout, seed=args.seed, maxfev=args.maxfev, cache=args.cache,
                              progress=sys.stderr.isatty(), degree=args.degree, start=args.start,
                              fallback=args.fallback)
    except UsageError as exc:
        if "problem_or_model" not in exc.params:
            raise
        # the API's problem_or_model is --model here (a problem name was checked by argparse's choices)
        cause = exc.__cause__ if isinstance(exc.__cause__, UsageError) else exc
        raise UsageError("model", cause.message) from exc
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.report())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="timestep grids: optimise one for a method and an NFE budget",
                       description=__doc__.splitlines()[0])
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    o = actions.add_parser("optimize", help="optimise a grid on calibration noises, report held-out errors",
                           description=__doc__.splitlines()[0])
    o.add_argument("--method", required=True, help="a fixed-step method (see pndmkit methods)")
    o.add_argument("--nfe", type=step_count, required=True, help=f"budget of model evaluations (at most {MAX_STEPS})")
    o.add_argument("--problem", choices=sorted(PROBLEMS), default=None, help="a built-in Gaussian-mixture problem")
    o.add_argument("--model", default=None, metavar="digits|PATH", help="a network: checkpoint name or path")
    o.add_argument("--calibration", type=positive_int, default=None,
                   help="noises the grid is fitted on (default: 256 on a problem; on a network the first half of "
                        "the noises whose references --cache holds, else 32)")
    o.add_argument("--heldout", type=positive_int, default=None,
                   help="noises it is judged on (default: 256 on a problem; on a network the other half of the "
                        "cached noises, else 32)")
    o.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the noises")
    o.add_argument("--maxfev", type=positive_int, default=None,
                   help="objective evaluations (default 100 per grid parameter, at least 100)")
    o.add_argument("--degree", type=_degree, default=DEFAULT_DEGREE, metavar="N|free",
                   help="grid family: log step lengths of the start grid moved by a Legendre polynomial of degree N "
                        "in the step index; 'free' moves every step (fits few calibration noises too closely)")
    o.add_argument("--start", type=_start, default=None, metavar="KIND|T0,T1,...",
                   help="start grid: a grid kind or comma-separated times with the run's end times "
                        "(default: the built-in kind with the smallest calibration error)")
    o.add_argument("--cache", default=None, metavar="DIR", help="--model: folder of cached references (none)")
    o.add_argument("--no-fallback", dest="fallback", action="store_false",
                   help="print the searched grid even where its held-out interval shows no gain (default: fall "
                        "back to the best built-in grid and say so)")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.set_defaults(func=run)
