"""``pndmkit grid optimize``: a method's grid optimised for an NFE budget on calibration noises, judged on held-out ones.

Runs :func:`pndmkit.studies.grid_opt.optimize` (:mod:`pndmkit.studies.grid_opt`) on a built-in Gaussian-mixture problem
(exact reference, seconds) or a network (``--model``, converged float64 reference, minutes; cached) and prints
the grid, its held-out error and that of every built-in grid kind; ``--json`` prints one object.
"""

from __future__ import annotations

import argparse
import json
import sys

from pndmkit.commands.args import MAX_STEPS, grid_or_times, nonnegative_int, positive_int, step_count
from pndmkit.commands.network import (NETWORK_HELP, add_cache_options, add_network_options, open_model,
                                      refuse_without_model, resolve_cache)
from pndmkit.errors import UsageError
from pndmkit.methods import METHODS, unknown_method_reason
from pndmkit.problems import PROBLEMS
from pndmkit.studies.grid_opt import AUTO_DEGREE, DEFAULT_DEGREE, FIRST_TIMES, check_degree


def _degree(text: str) -> int | str | None:
    if text == "free":
        return None
    if text == AUTO_DEGREE:
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, 'free' or {AUTO_DEGREE!r}, got {text!r}") \
            from None


def run(args: argparse.Namespace) -> int:
    import warnings

    from pndmkit.studies.grid_opt import GridFallbackWarning, optimize

    if (args.problem is None) == (args.model is None):
        raise UsageError(("problem", "model"), "give exactly one of --problem NAME or --model digits|PATH")
    if args.cache is not None and args.model is None:
        raise UsageError("cache", "--cache DIR holds a network's references; it needs --model (a --problem has "
                                  "exact ones and caches nothing)")
    if args.rebuild_cache and (args.model is None or (args.cache or "").lower() == "none"):
        raise UsageError("rebuild_cache", "--rebuild-cache recomputes damaged entries of the reference cache of a "
                                          "--model (--cache DIR, by default $PNDMKIT_CACHE or ~/.cache/pndmkit/real); "
                                          "it needs --model and a cache other than 'none'")
    if args.method not in METHODS:
        raise UsageError("method", f"unknown method {args.method!r}{unknown_method_reason(args.method)}; known: "
                                   f"{', '.join(METHODS)}")
    if args.model is not None and args.model in PROBLEMS:
        raise UsageError("model", f"{args.model!r} is a built-in problem, not a network; use --problem {args.model}")
    refuse_without_model(args, ("scheduler_config", "device", "max_minutes"), "a network")
    steps = _check_steps(args.method, args.nfe, args.first_time)  # before any reference: they cost minutes
    if steps > 1 or args.first_time == "fixed" or args.degree != AUTO_DEGREE:
        check_degree(args.degree, steps)
    try:
        with warnings.catch_warnings():  # the report says it, in its last line
            warnings.simplefilter("ignore", GridFallbackWarning)
            if args.model is not None:
                result = _optimize_network(args)
            else:
                result = optimize(args.method, args.problem, args.nfe, calibration=args.calibration,
                                  heldout=args.heldout, seed=args.seed, maxfev=args.maxfev, cache=args.cache,
                                  progress=sys.stderr.isatty(), degree=args.degree, start=args.start,
                                  fallback=args.fallback, first_time=args.first_time)
    except UsageError as exc:
        if "problem_or_model" not in exc.params:
            raise
        # the API's problem_or_model is --model here (a problem name was checked by argparse's choices)
        cause = exc.__cause__ if isinstance(exc.__cause__, UsageError) else exc
        raise UsageError("model", cause.message) from exc
    if result is None:  # stopped by --max-minutes before the references were finished
        return 1
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.report())
    return 0


def _check_steps(method: str, nfe: int, first_time: str = "fixed") -> int:
    """The steps an NFE budget buys ``method``; with ``first_time="fixed"`` a budget of less than two steps is
    refused before any work: one step's grid is then its two end times, which leaves nothing to optimise (the API
    hands such a run back, marked). With a free first time that time is the one parameter of a one-step grid."""
    from pndmkit.methods import get_method, steps_for_nfe

    spec = get_method(method)
    steps = steps_for_nfe(spec, nfe)
    if steps is None:
        raise UsageError("nfe", f"nfe={nfe} is less than one step of {spec.name!r} costs ({spec.nfe(1)})")
    if steps == 1 and first_time == "fixed":
        used = "" if spec.nfe(1) == nfe else f", using only {spec.nfe(1)} of the {nfe} evaluations"
        raise UsageError("nfe", f"--nfe {nfe} buys {spec.name} one step{used}; one step's grid is its two end "
                                f"times, with no interior time to optimise: give --nfe {spec.nfe(2)} or more "
                                f"(two steps), or --first-time free (the first time is then searched)")
    return steps


def _optimize_network(args: argparse.Namespace):
    """``--model``: the cost first (reference blocks, network evaluations, time from one timed evaluation), then
    the references block by block (a line each, cached as they finish; with ``--cache none`` in a temporary
    folder for this run), then the search, which Ctrl-C or ``--max-minutes`` ends with the best grid so far."""
    import dataclasses
    import tempfile

    import torch

    from pndmkit.methods import get_method
    from pndmkit.studies.grid_opt import BUILTIN_KINDS, check_start, default_noises, optimize
    from pndmkit.studies.monitor import StudyMonitor, TimeBudgetExceeded, duration
    from pndmkit.studies.real import check_reference_start, load_model
    from pndmkit.studies.targets import StudyTarget, reference_blocks

    monitor = StudyMonitor(max_minutes=args.max_minutes)
    ckpt = open_model(args, grid_options="--start, the grid the search starts from, and --degree")
    spec = get_method(args.method)
    steps = _check_steps(args.method, args.nfe, args.first_time)
    check_start(args.start, steps)  # before any reference: they cost minutes
    check_reference_start(ckpt.schedule, ckpt.schedule.t_start, "model", (
        "grid optimize searches grids from the network's own first time and has no --t-start: optimize from "
        "t_start={later} in Python (pndmkit.studies.grid_opt.optimize(..., t_start={later})), or measure the "
        "methods there with pndmkit order --model " + str(args.model).replace("{", "{{").replace("}", "}}")
        + " --t-start {later}"))
    cache = resolve_cache(args)
    with tempfile.TemporaryDirectory(prefix="pndmkit-references-") as scratch:
        folder = scratch if cache is None else cache
        target = StudyTarget.resolve(ckpt, cache=folder, seed=args.seed, rebuild_cache=args.rebuild_cache)
        default_cal, default_held = default_noises(target)
        calibration = default_cal if args.calibration is None else args.calibration
        heldout = default_held if args.heldout is None else args.heldout
        loaded = load_model(ckpt)
        pieces = reference_blocks(0, calibration) + reference_blocks(calibration, heldout)
        monitor.time_evaluation(loaded.model, torch.from_numpy(target.noises(0, calibration)),
                                target.t_start)
        runs = args.maxfev or 100 * max(1, (check_degree(args.degree, steps) if steps > 1 else 0)
                                        + (args.first_time == "free"))
        search = (runs + len(BUILTIN_KINDS)) * spec.nfe(steps)
        judge = (len(BUILTIN_KINDS) + 1) * spec.nfe(steps)
        monitor.line(f"{loaded.name} on {getattr(loaded.model, 'device', None) or 'cpu'}: one network evaluation "
                     f"of the {calibration} calibration noises takes {1000 * monitor.seconds_per_evaluation:.1f} "
                     f"ms (timed)")
        monitor.line(f"references: {len(pieces)} blocks of noises (2 DOP853 solves each, cached ones cost nothing; "
                     f"DOP853 chooses how many evaluations: about {duration(monitor.cost(1000))} per 1000 on "
                     f"{calibration} noises)")
        monitor.line(f"search: at most {runs} runs of {spec.name} x {steps} steps ({search} network evaluations "
                     f"of the calibration noises, about {duration(monitor.cost(search))}); judging: {judge} "
                     f"evaluations of the {heldout} held-out noises, about "
                     f"{duration(monitor.cost(judge, heldout))}")
        took: list[float] = []
        try:
            for j, (first, n) in enumerate(pieces):
                monitor.check()
                began = monitor.elapsed()
                block = target.study(first, n, progress=sys.stderr.isatty(), stop_early=monitor.check)
                if block.reference_nfe:
                    took.append(monitor.elapsed() - began)
                monitor.line(f"reference block {j + 1} of {len(pieces)} (noises {first}-{first + n - 1}): " +
                             (f"{block.reference_nfe} evaluations in {duration(took[-1])}" if block.reference_nfe
                              else "cached") + f"; {monitor.remaining(took, len(pieces) - j - 1)}")
        except KeyboardInterrupt as exc:
            kept = "" if folder == scratch else f"; the finished ones stay cached in {folder}: rerun to go on"
            why = "--max-minutes is spent" if isinstance(exc, TimeBudgetExceeded) else "interrupted"
            monitor.line(f"stopped ({why}) after {j} of {len(pieces)} reference blocks{kept}; nothing to report yet")
            if isinstance(exc, TimeBudgetExceeded):
                return None
            raise
        monitor.line(f"references done; searching (at most {runs} runs)")
        result = optimize(args.method, ckpt, args.nfe, calibration=calibration, heldout=heldout,
                          seed=args.seed, maxfev=args.maxfev, cache=folder, progress=sys.stderr.isatty(),
                          degree=args.degree, start=args.start, rebuild_cache=args.rebuild_cache,
                          stop_early=monitor.check, fallback=args.fallback, first_time=args.first_time)
        result = dataclasses.replace(result, problem=str(args.model))  # as the user named it
        monitor.line(f"done: {result.evaluations} runs" + (f" (stopped early: {result.stopped})" if result.stopped
                                                          else ""))
    return result


#: the one-line description of ``pndmkit grid`` and ``pndmkit grid optimize`` (plain text: argparse prints it as is)
DESCRIPTION = ("pndmkit grid optimize: a method's grid optimised for an NFE budget on calibration noises, judged on "
               "held-out ones.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="timestep grids: optimise one for a method and an NFE budget",
                       description=DESCRIPTION)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    o = actions.add_parser("optimize", help="optimise a grid on calibration noises, report held-out errors",
                           description=DESCRIPTION + " A --problem has an exact reference (seconds); a --model "
                           "needs a converged float64 one (minutes to an hour per new noises on a CPU; cached "
                           "with --cache). --model takes a pndmkit checkpoint, a diffusers folder or a cached hub id; "
                           "any other callable network: pndmkit.studies.grid_opt.optimize in Python (README.md, "
                           "\"Accuracy on real networks\").")
    o.add_argument("--method", required=True, help="a fixed-step method (see pndmkit methods)")
    o.add_argument("--nfe", type=step_count, required=True, help=f"budget of model evaluations (at most {MAX_STEPS})")
    o.add_argument("--problem", choices=sorted(PROBLEMS), default=None,
                   help="a built-in Gaussian-mixture problem (default: none; give --problem or --model)")
    o.add_argument("--model", default=None, metavar="digits|PATH|ORG/NAME",
                   help="a network: " + NETWORK_HELP + " (default: none; give --problem or --model)")
    o.add_argument("--calibration", type=positive_int, default=None,
                   help="noises the grid is fitted on (default on a problem: 2048 for 8 dimensions or fewer, "
                        "halved as the dimension doubles, at least 256; on a network the first half of the noises "
                        "whose references --cache holds, else 32)")
    o.add_argument("--heldout", type=positive_int, default=None,
                   help="noises it is judged on (default: as many as --calibration's default on a problem; on a "
                        "network the other half of the cached noises, else 32)")
    o.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the noises")
    o.add_argument("--maxfev", type=positive_int, default=None,
                   help="objective evaluations of the whole search (default 100 per grid parameter, the free first "
                        "time included, at least 100); with --first-time free the first N d / (d + 1) of them, d the "
                        "grid parameters, search with the first time at the noise's, the rest search it too")
    o.add_argument("--degree", type=_degree, default=AUTO_DEGREE, metavar="N|free|auto",
                   help="grid family: log step lengths of the start grid moved by a Legendre polynomial of degree N "
                        "in the step index, 1 to steps - 1 (a larger N is refused); 'free' moves every step (fits "
                        f"few calibration noises too closely); 'auto' (the default) is {DEFAULT_DEGREE}, lowered to "
                        "steps - 1 on shorter grids")
    o.add_argument("--start", type=grid_or_times, default=None, metavar="KIND|T0,T1,...",
                   help="start grid: a grid kind or times separated by commas or spaces, with the run's end times "
                        "(default: the built-in kind with the smallest calibration error)")
    o.add_argument("--first-time", choices=FIRST_TIMES, default="free",
                   help="'free' (the default): search the grid's first time too, at or below the noise's time (the "
                        "noise is taken as the state there: on a VP schedule the noise itself, as diffusers' "
                        "'leading' grids start below the last training step), the error still measured against "
                        "the flow from the noise's time; 'fixed': start at the noise's time, as the built-in grids do")
    add_cache_options(o)
    add_network_options(o)
    o.add_argument("--no-fallback", dest="fallback", action="store_false",
                   help="print the searched grid even where its held-out interval shows no gain (default: fall "
                        "back to the best built-in grid and say so)")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.set_defaults(func=run)
