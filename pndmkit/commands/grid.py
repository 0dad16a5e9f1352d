"""``pndmkit grid optimize`` and ``pndmkit grid fit``: a grid, or a whole solver, fitted for an NFE budget on
calibration noises and judged on held-out ones.

``grid optimize`` runs :func:`pndmkit.studies.grid_opt.optimize` (:mod:`pndmkit.studies.grid_opt`) on a built-in
Gaussian-mixture problem (exact reference, seconds) or a network (``--model``, converged float64 reference, minutes;
cached) and prints the grid, its held-out error and that of every built-in grid kind; ``--json`` prints one object.
``grid fit`` runs :func:`pndmkit.studies.solver_opt.optimize_solver` on the same targets (the same options choose
them) and writes the fitted solver to ``--out FILE`` (:func:`~pndmkit.studies.solver_opt.save_solver`), which
``pndmkit sample --solver FILE`` samples with.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from pndmkit._io import json_text
from pndmkit.commands.args import MAX_STEPS, grid_or_times, nonnegative_int, positive_int, step_count
from pndmkit.commands.network import (NETWORK_HELP, add_cache_options, add_network_options, open_model,
                                      refuse_without_model, resolve_cache)
from pndmkit.errors import UsageError
from pndmkit.methods import METHODS, unknown_method_reason
from pndmkit.problems import PROBLEMS
from pndmkit.studies.grid_opt import AUTO_DEGREE, DEFAULT_DEGREE, FIRST_TIMES, check_degree
from pndmkit.studies.solver_file import BASE_METHOD, BASE_METHODS


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


def _check_target(args: argparse.Namespace) -> None:
    """The checks of the options that choose what a grid command fits on (``--problem`` or ``--model`` and the
    options of a network), before any work."""
    if (args.problem is None) == (args.model is None):
        raise UsageError(("problem", "model"), "give exactly one of --problem NAME or --model digits|PATH")
    if args.cache is not None and args.model is None:
        raise UsageError("cache", "--cache DIR holds a network's references; it needs --model (a --problem has "
                                  "exact ones and caches nothing)")
    if args.rebuild_cache and (args.model is None or (args.cache or "").lower() == "none"):
        raise UsageError("rebuild_cache", "--rebuild-cache recomputes damaged entries of the reference cache of a "
                                          "--model (--cache DIR, by default $PNDMKIT_CACHE or ~/.cache/pndmkit/real); "
                                          "it needs --model and a cache other than 'none'")
    if args.model is not None and args.model in PROBLEMS:
        raise UsageError("model", f"{args.model!r} is a built-in problem, not a network; use --problem {args.model}")
    refuse_without_model(args, ("scheduler_config", "device", "max_minutes"), "a network")


@contextmanager
def _model_errors() -> Iterator[None]:
    """The API's ``problem_or_model`` is ``--model`` here (a problem name was checked by argparse's choices)."""
    try:
        yield
    except UsageError as exc:
        if "problem_or_model" not in exc.params:
            raise
        cause = exc.__cause__ if isinstance(exc.__cause__, UsageError) else exc
        raise UsageError("model", cause.message) from exc


def run(args: argparse.Namespace) -> int:
    """``pndmkit grid optimize``."""
    import warnings

    from pndmkit.studies.grid_opt import GridFallbackWarning, optimize

    _check_target(args)
    if args.method not in METHODS:
        raise UsageError("method", f"unknown method {args.method!r}{unknown_method_reason(args.method)}; known: "
                                   f"{', '.join(METHODS)}")
    steps = _check_steps(args.method, args.nfe, args.first_time)  # before any reference: they cost minutes
    if steps > 1 or args.first_time == "fixed" or args.degree != AUTO_DEGREE:
        check_degree(args.degree, steps)
    with _model_errors(), warnings.catch_warnings():  # the report says it, in its last line
        warnings.simplefilter("ignore", GridFallbackWarning)
        if args.model is not None:
            result = _optimize_network(args)
        else:
            result = optimize(args.method, args.problem, args.nfe, calibration=args.calibration,
                              heldout=args.heldout, seed=args.seed, maxfev=args.maxfev, cache=args.cache,
                              progress=sys.stderr.isatty(), degree=args.degree, start=args.start,
                              fallback=args.fallback, first_time=args.first_time)
    if result is None:  # stopped by --max-minutes before the references were finished
        return 1
    print(json_text(result.to_dict(), indent=2) if args.json else result.report())
    return 0


def _check_out(args: argparse.Namespace) -> Path:
    """``grid fit --out FILE``, before any work: a file name (not a folder) in a folder that can be written, and no
    earlier file there unless ``--overwrite``, never anything but a regular file (a device, a FIFO), and a name that
    ends in ``/`` is a folder's (:func:`pndmkit._io.check_out_file`). Missing folders on the way are made when the file is written, as
    every ``--out`` of pndmkit's commands makes its missing folders (``compare``, ``sample`` and ``train``'s
    ``--out DIR``); checked here is that they can be (the nearest existing one is a writable folder)."""
    from pndmkit._io import check_out_file

    return check_out_file(args.out, "out", overwrite=args.overwrite, what="solver file", example="solver.json",
                          option="--out")


def run_fit(args: argparse.Namespace) -> int:
    """``pndmkit grid fit``: the report on stdout (``--json``: one object), the solver in ``--out``."""
    import warnings

    from pndmkit.studies.grid_opt import GridFallbackWarning
    from pndmkit.errors import WriteError
    from pndmkit.studies.solver_file import solver_file_text
    from pndmkit.studies.solver_opt import SolverFallbackWarning, optimize_solver, save_solver

    _check_target(args)
    out = _check_out(args)
    # before any reference: they cost minutes. One step is no refusal here even with --first-time fixed: the grid
    # search then has nothing to move, but the fit still has the step's weight
    _check_steps(args.base, args.nfe, "free")
    with _model_errors(), warnings.catch_warnings():  # the report says it
        warnings.simplefilter("ignore", SolverFallbackWarning)
        warnings.simplefilter("ignore", GridFallbackWarning)
        if args.model is not None:
            result = _fit_network(args)
        else:
            result = optimize_solver(args.problem, args.nfe, calibration=args.calibration, heldout=args.heldout,
                                     seed=args.seed, maxfev=args.maxfev, grid_maxfev=args.grid_maxfev,
                                     progress=sys.stderr.isatty(), first_time=args.first_time,
                                     fallback=args.fallback, base=args.base)
    if result is None:  # stopped by --max-minutes before the references were finished
        return 1
    report = json_text(result.to_dict(), indent=2) if args.json else _fit_report(result)
    try:  # first: a reader that stops early (| head) ends the command at its first print
        save_solver(result, out, overwrite=args.overwrite)
    except UsageError as exc:  # a file made there while the fit ran: the report still says what was found
        print(report)
        raise UsageError("out", exc.message.replace("pass overwrite=True", "pass --overwrite")) from None
    except WriteError as exc:  # a full disk, a read-only filesystem: the fit is not lost, its file is printed
        print(report)
        print(solver_file_text(result), end="", flush=True)
        raise UsageError("out", f"{exc}; the fit is not lost: the solver file's text follows the report on stdout "
                                "(its last JSON object); save it to a writable place and pass that "
                                "file to pndmkit sample --solver") from None
    print(report)
    import shlex

    target = f"--checkpoint {shlex.quote(args.model)}" if args.model is not None else "--checkpoint CHECKPOINT"
    print(f"wrote {out}; sample with it: pndmkit sample --solver {shlex.quote(str(out))} {target} --out DIR",
          file=sys.stderr if args.json else sys.stdout)
    return 0


def _fit_report(result: Any) -> str:
    """``grid fit``'s report: the solver's lines, the grid it hands back (times to 7 digits; the file holds them
    exactly) and the first line of the grid search it started from."""
    og = result.grid_result
    return "\n".join([result.report(), "  grid: " + " ".join(f"{float(t):.7g}" for t in result.grid),
                      f"  started from the grid search: {og.report().splitlines()[0]}; its grid's held-out error "
                      f"{og.heldout_error:.4g}" + (f"; it fell back to the built-in {og.baseline_kind} grid "
                                                   f"({og.baseline_error:.4g}), which the fit started from"
                                                   if og.fell_back else "")])


def _check_steps(method: str, nfe: int, first_time: str = "fixed") -> int:
    """The steps an NFE budget buys ``method``; with ``first_time="fixed"`` a budget of less than two steps is
    refused before any work: one step's grid is then its two end times, which leaves no grid to optimise (the API
    hands such a run back, marked). With a free first time that time is the one parameter of a one-step grid.
    (``grid fit`` passes ``"free"`` here whatever its ``--first-time``: one step's weight is still fitted.)"""
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


def _network_study(args: argparse.Namespace, *, grid_options: str, check: Callable[[], None], refusal: str,
                   plan: Callable[..., tuple[int, str]], search: Callable[..., Any]) -> Any:
    """``--model``: the cost first (reference blocks, network evaluations, time from one timed evaluation), then
    the references block by block (a line each, cached as they finish; with ``--cache none`` in a temporary
    folder for this run), then the search, which Ctrl-C or ``--max-minutes`` ends with the best result so far.

    ``grid_options`` are the command's options that choose its grid (for :func:`open_model`); ``check()`` runs once
    the network is open, before any reference; ``refusal`` is what to do instead where the network's first time
    has no reference (:func:`~pndmkit.studies.real.check_reference_start`'s ``fix``, ``{later}`` its time);
    ``plan(calibration, heldout, monitor)`` gives the search's most runs and the line that says what the search
    and its judging cost; ``search(ckpt, folder, calibration, heldout, monitor)`` runs them. Returns what
    ``search`` returns, its ``problem`` the ``--model`` as the user named it; ``None`` where ``--max-minutes``
    was spent before the references were finished.
    """
    import tempfile

    import torch

    from pndmkit.studies.grid_opt import default_noises
    from pndmkit.studies.monitor import StudyMonitor, TimeBudgetExceeded, duration
    from pndmkit.studies.real import check_reference_start, load_model
    from pndmkit.studies.targets import StudyTarget, reference_blocks

    monitor = StudyMonitor(max_minutes=args.max_minutes)
    ckpt = open_model(args, grid_options=grid_options)
    check()  # before any reference: they cost minutes
    check_reference_start(ckpt.schedule, ckpt.schedule.t_start, "model", refusal)
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
        runs, cost = plan(calibration, heldout, monitor)
        monitor.line(f"{loaded.name} on {getattr(loaded.model, 'device', None) or 'cpu'}: one network evaluation "
                     f"of the {calibration} calibration noises takes {1000 * monitor.seconds_per_evaluation:.1f} "
                     f"ms (timed)")
        monitor.line(f"references: {len(pieces)} blocks of noises (2 DOP853 solves each, cached ones cost nothing; "
                     f"DOP853 chooses how many evaluations: about {duration(monitor.cost(1000))} per 1000 on "
                     f"{calibration} noises)")
        monitor.line(cost)
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
        return search(ckpt, folder, calibration, heldout, monitor)


def _refusal(command: str, function: str, model: str) -> str:
    """What to do where the network's own first time has no reference (``{later}``: the time to start at)."""
    return (f"grid {command} from the network's own first time and has no --t-start: {command.split()[0]} from "
            f"t_start={{later}} in Python ({function}(..., t_start={{later}})), or measure the methods there with "
            "pndmkit order --model " + model.replace("{", "{{").replace("}", "}}") + " --t-start {later}")


def _optimize_network(args: argparse.Namespace):
    """``grid optimize --model`` (:func:`_network_study`): the grid search, which Ctrl-C or ``--max-minutes`` ends
    with the best grid so far."""
    import dataclasses

    from pndmkit.methods import get_method
    from pndmkit.studies.grid_opt import BUILTIN_KINDS, check_start, default_grid_maxfev, optimize
    from pndmkit.studies.monitor import duration

    spec = get_method(args.method)
    steps = _check_steps(args.method, args.nfe, args.first_time)
    runs = args.maxfev or default_grid_maxfev(steps, args.degree, args.first_time)

    def plan(calibration: int, heldout: int, monitor: Any) -> tuple[int, str]:
        search = (runs + len(BUILTIN_KINDS)) * spec.nfe(steps)
        judge = (len(BUILTIN_KINDS) + 1) * spec.nfe(steps)
        return runs, (f"search: at most {runs} runs of {spec.name} x {steps} steps ({search} network evaluations "
                      f"of the calibration noises, about {duration(monitor.cost(search))}); judging: {judge} "
                      f"evaluations of the {heldout} held-out noises, about {duration(monitor.cost(judge, heldout))}")

    def search(ckpt: Any, folder: str, calibration: int, heldout: int, monitor: Any) -> Any:
        result = optimize(args.method, ckpt, args.nfe, calibration=calibration, heldout=heldout,
                          seed=args.seed, maxfev=args.maxfev, cache=folder, progress=sys.stderr.isatty(),
                          degree=args.degree, start=args.start, rebuild_cache=args.rebuild_cache,
                          stop_early=monitor.check, fallback=args.fallback, first_time=args.first_time)
        result = dataclasses.replace(result, problem=str(args.model))  # as the user named it
        monitor.line(f"done: {result.evaluations} runs" + (f" (stopped early: {result.stopped})" if result.stopped
                                                          else ""))
        return result

    return _network_study(args, grid_options="--start, the grid the search starts from, and --degree",
                          check=lambda: check_start(args.start, steps),
                          refusal=_refusal("optimize searches grids", "pndmkit.studies.grid_opt.optimize",
                                           str(args.model)), plan=plan, search=search)


def _fit_network(args: argparse.Namespace):
    """``grid fit --model`` (:func:`_network_study`): the grid search, then the weight search, either of which
    Ctrl-C or ``--max-minutes`` ends with the best so far."""
    import dataclasses

    from pndmkit.studies.grid_opt import BUILTIN_KINDS, default_grid_maxfev
    from pndmkit.studies.monitor import duration
    from pndmkit.studies.solver_opt import default_maxfev, optimize_solver

    steps = args.nfe  # iPNDM (either base): one evaluation a step
    # one step from the noise's time: no grid to search (the fit still has its weight)
    searched = steps > 1 or args.first_time == "free"
    grid_runs = (args.grid_maxfev or default_grid_maxfev(steps, AUTO_DEGREE, args.first_time)) if searched else 0
    runs = grid_runs + (args.maxfev or default_maxfev(steps, args.first_time))

    def plan(calibration: int, heldout: int, monitor: Any) -> tuple[int, str]:
        search = (runs + len(BUILTIN_KINDS) + 1) * steps
        judge = (len(BUILTIN_KINDS) + 4) * steps
        return runs, (f"search: at most {grid_runs} runs of {args.base} x {steps} steps for the grid, then "
                      f"{runs - grid_runs} for the grid and weights ({search} network evaluations of the calibration "
                      f"noises, about {duration(monitor.cost(search))}); judging: {judge} evaluations of the "
                      f"{heldout} held-out noises, about {duration(monitor.cost(judge, heldout))}")

    def search(ckpt: Any, folder: str, calibration: int, heldout: int, monitor: Any) -> Any:
        result = optimize_solver(ckpt, args.nfe, calibration=calibration, heldout=heldout, seed=args.seed,
                                 maxfev=args.maxfev, grid_maxfev=args.grid_maxfev, cache=folder,
                                 progress=sys.stderr.isatty(), first_time=args.first_time, fallback=args.fallback,
                                 rebuild_cache=args.rebuild_cache, stop_early=monitor.check, base=args.base)
        # as the user named it
        result = dataclasses.replace(result, grid_result=dataclasses.replace(result.grid_result,
                                                                             problem=str(args.model)))
        stopped = "; ".join(s for s in (result.grid_result.stopped, result.stopped) if s)
        monitor.line(f"done: {result.grid_result.evaluations} runs for the grid, {result.evaluations} for the "
                     "weights" + (f" (stopped early: {stopped})" if stopped else ""))
        return result

    return _network_study(args, grid_options="the grid the fit searches", check=lambda: None,
                          refusal=_refusal("fit fits solvers", "pndmkit.studies.solver_opt.optimize_solver",
                                           str(args.model)), plan=plan, search=search)


#: the one-line description of ``pndmkit grid`` and ``pndmkit grid optimize`` (plain text: argparse prints it as is)
DESCRIPTION = ("pndmkit grid optimize: a method's grid optimised for an NFE budget on calibration noises, judged on "
               "held-out ones.")
#: the one-line description of ``pndmkit grid fit``
FIT_DESCRIPTION = ("pndmkit grid fit: a solver (iPNDM's grid and a weight table of its own for each step) fitted for "
                   "an NFE budget on calibration noises, judged on held-out ones, and written to a file that pndmkit "
                   "sample --solver samples with.")
#: where a network study's cost and advice are described (the descriptions' last sentence)
NETWORK_NOTE = (" A --problem has an exact reference (seconds); a --model needs a converged float64 one (minutes to "
                "an hour per new noises on a CPU; cached with --cache). --model takes a pndmkit checkpoint, a diffusers "
                "folder or a cached hub id; any other callable network: {function} in Python (README.md, \"Accuracy "
                "on real networks\").")


def _add_target_options(p: argparse.ArgumentParser, fitted: str) -> None:
    """The options of a grid command that choose what it fits on and with which noises (``--problem`` or
    ``--model``, ``--calibration``, ``--heldout``, ``--seed``, ``--first-time``, the cache and network options);
    ``fitted`` is what the command fits (``"the grid"``), for the help. :func:`_check_target` checks them."""
    p.add_argument("--problem", choices=sorted(PROBLEMS), default=None,
                   help="a built-in Gaussian-mixture problem (default: none; give --problem or --model)")
    p.add_argument("--model", default=None, metavar="digits|PATH|ORG/NAME",
                   help="a network: " + NETWORK_HELP + " (default: none; give --problem or --model)")
    p.add_argument("--calibration", type=positive_int, default=None,
                   help=f"noises {fitted} is fitted on (default on a problem: 2048 for 8 dimensions or fewer, "
                        "halved as the dimension doubles, at least 256; on a network the first half of the noises "
                        "whose references --cache holds, else 32)")
    p.add_argument("--heldout", type=positive_int, default=None,
                   help="noises it is judged on (default: as many as --calibration's default on a problem; on a "
                        "network the other half of the cached noises, else 32)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the noises")
    p.add_argument("--first-time", choices=FIRST_TIMES, default="free",
                   help="'free' (the default): search the grid's first time too, at or below the noise's time (the "
                        "noise is taken as the state there: on a VP schedule the noise itself, as diffusers' "
                        "'leading' grids start below the last training step), the error still measured against "
                        "the flow from the noise's time; 'fixed': start at the noise's time, as the built-in grids do")
    add_cache_options(p)
    add_network_options(p)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="timestep grids and fitted solvers for an NFE budget: optimise a method's grid, "
                                    "or fit a solver's grid and weights", description=DESCRIPTION + " " +
                       FIT_DESCRIPTION)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    o = actions.add_parser("optimize", help="optimise a grid on calibration noises, report held-out errors",
                           description=DESCRIPTION + NETWORK_NOTE.format(
                               function="pndmkit.studies.grid_opt.optimize"))
    o.add_argument("--method", required=True, help="a fixed-step method (see pndmkit methods)")
    o.add_argument("--nfe", type=step_count, required=True, help=f"budget of model evaluations (at most {MAX_STEPS})")
    _add_target_options(o, "the grid")
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
    o.add_argument("--no-fallback", dest="fallback", action="store_false",
                   help="print the searched grid even where its held-out interval shows no gain (default: fall "
                        "back to the best built-in grid and say so)")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.set_defaults(func=run)

    f = actions.add_parser("fit", help="fit a solver's grid and step weights on calibration noises, report held-out "
                                       "errors, write it to --out FILE",
                           description=FIT_DESCRIPTION + " It first optimises iPNDM's grid (as grid optimize --method "
                           "ipndm does; --base ipndm-x0: ipndm-x0's), then fits that grid and the weights together by "
                           "least squares, and hands back that method on the optimised grid, saying so, where the "
                           "held-out interval of the fitted solver's cut does not lie above 0." + NETWORK_NOTE.format(
                               function="pndmkit.studies.solver_opt.optimize_solver"))
    f.add_argument("--nfe", type=step_count, required=True,
                   help=f"budget of model evaluations: one a step (at most {MAX_STEPS})")
    f.add_argument("--out", required=True, metavar="FILE",
                   help="the solver file to write (JSON, written atomically; missing folders on its path are "
                        "created, as compare's and sample's --out DIR are; checked before the fit: an existing file "
                        "is refused unless --overwrite, and so is a path whose folders cannot be created or written)")
    f.add_argument("--overwrite", action="store_true", help="let --out replace an existing file")
    _add_target_options(f, "the solver")
    f.add_argument("--maxfev", type=positive_int, default=None,
                   help="sampling runs of the weight search on the calibration noises, its Jacobian's included "
                        "(default: 40 x (P + 1), at least 200, P the grid's parameters, the first time if free and "
                        "the table's weights: 760 at NFE 5 with --first-time free, 720 with it fixed)")
    f.add_argument("--grid-maxfev", type=positive_int, default=None,
                   help="--maxfev of the grid search the fit starts from (default: grid optimize's, 100 per grid "
                        "parameter)")
    f.add_argument("--base", choices=BASE_METHODS, default=BASE_METHOD,
                   help=f"the method the solver is built on (default {BASE_METHOD}): its grid is searched first, its "
                        "weights start the table, its transfer runs it and it is the fallback; ipndm weighs past eps "
                        "predictions through DDIM's transfer, ipndm-x0 past x0 predictions through the data-prediction "
                        "transfer (DPM-Solver++'s first-order step); the file records it and sample --solver reads it")
    f.add_argument("--no-fallback", dest="fallback", action="store_false",
                   help="hand back the fitted weights even where their held-out interval shows no gain (default: "
                        "fall back to the base method on its optimised grid and say so)")
    f.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    f.set_defaults(func=run_fit)
