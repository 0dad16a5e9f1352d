"""``pndmkit order``: measured convergence orders of the registered methods against exact ground truth.

Runs :func:`pndmkit.studies.convergence.run_study` on a built-in Gaussian-mixture problem and prints, per method,
the declared order, the order fitted on the asymptotic range it picked, the error at each step count
and the NFE; ``--json`` prints one JSON object instead, ``--plot FILE`` writes error against NFE
(never over an existing file unless ``--overwrite``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pndmkit._io import json_text
from pndmkit.commands.args import MAX_STEPS, comma_entries, finite_float, nonnegative_int, positive_int
from pndmkit.commands.network import (NETWORK_HELP, add_cache_options, add_network_options, open_model,
                                      refuse_without_model, resolve_cache)
from pndmkit.errors import UsageError, blame

from pndmkit.schedules import SCHEDULES
from pndmkit.studies.convergence import DEFAULT_STEPS, make_study, run_study
from pndmkit.studies.reports import order_json, order_plot, order_table
from pndmkit.grids import GRID_KINDS
from pndmkit.methods import METHODS, unknown_method_reason
from pndmkit.problems import PROBLEMS
from pndmkit.studies.real import DEFAULT_MODEL_STEPS


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in comma_entries(text, "step counts")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if len(values) < 2 or any(v < 1 for v in values) or values != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"need at least two increasing step counts >= 1, got {text!r}")
    if values[-1] > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"step counts must be at most {MAX_STEPS}, got {values[-1]}")
    return values


def _plot_file(text: str) -> str:
    """argparse type: a file name whose extension matplotlib can write, in an existing folder (checked before
    the study runs, not after it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    formats = FigureCanvasAgg.get_supported_filetypes()
    path = Path(text)
    if path.suffix.lower().lstrip(".") not in formats:
        raise argparse.ArgumentTypeError(f"{text!r} has no image extension matplotlib writes; use one of "
                                         f"{', '.join('.' + f for f in sorted(formats))}")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder of {text!r} does not exist")
    return text


def _methods(text: str) -> list[str]:
    names = comma_entries(text, "method names")
    if not names:
        raise argparse.ArgumentTypeError(f"the list of methods is empty (got {text!r}); give comma-separated "
                                         f"names, e.g. ddim,f-pndm; known: {', '.join(METHODS)}")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        reasons = [unknown_method_reason(n).removeprefix(": ") for n in unknown]
        why = (": " + "; ".join(r for r in reasons if r)) if any(reasons) else ""
        raise argparse.ArgumentTypeError(f"unknown method(s) {unknown}{why}; known: {', '.join(METHODS)}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"method(s) {twice} named more than once in {text!r}; name each once")
    return names


def run(args: argparse.Namespace) -> int:
    tty = sys.stderr.isatty()

    def progress(msg: str) -> None:
        if tty:
            sys.stderr.write(f"\r\033[K{msg}")
            sys.stderr.flush()

    if args.plot and Path(args.plot).exists() and not args.overwrite:
        raise UsageError("plot", f"--plot {args.plot!r} already exists; choose another file, or add --overwrite "
                                 f"to replace it")
    if args.overwrite and not args.plot:
        raise UsageError("overwrite", "--overwrite lets --plot replace an existing file, and no --plot is given; "
                                      "add --plot FILE or drop --overwrite")
    if args.model is not None:
        return _run_model(args, tty)
    refuse_without_model(args, ("scheduler_config", "device", "max_minutes", "cache", "rebuild_cache"),
                         "a network study", messages={
                             "cache": "--cache DIR holds the network study's references; it needs --model (the "
                                      "Gaussian-mixture study has exact ones and caches nothing)",
                             "rebuild_cache": "--rebuild-cache recomputes damaged entries of a network study's "
                                              "cache; it needs --model"})
    args.steps = args.steps or list(DEFAULT_STEPS)
    with blame("t_start", "t_end", "grid", "schedule", "problem", "batch", "seed"):
        study = make_study(args.problem or "gmm2d", args.schedule or "linear-vp", grid=args.grid,
                           t_start=args.t_start, t_end=args.t_end, seed=args.seed,
                           batch=8 if args.batch is None else args.batch)
    results = run_study(study, args.methods, args.steps, progress=progress)
    if tty:
        sys.stderr.write("\r\033[K")
    if args.plot:
        order_plot(study, results, args.plot)
    if args.json:
        print(json_text(order_json(study, results), indent=2))
    else:
        print(order_table(study, results, args.steps))
        if args.plot:
            print(f"\nplot written to {args.plot}")
    return 0


def _run_model(args: argparse.Namespace, tty: bool) -> int:
    """``--model``: the network study of :mod:`pndmkit.studies.real`, reported like the mixture study.

    Prints its cost before it starts (the sweeps' network evaluations and their time from one timed evaluation;
    for an uncached reference the time of 1000 evaluations and no total, said so, since DOP853 chooses how many
    as it goes) and a line per finished block on stderr; Ctrl-C or ``--max-minutes`` stops it with the methods finished so
    far (their sweeps and a finished reference stay in the cache). The budget covers the reference solve too: it is
    checked before each of its network evaluations, and a budget spent before the reference is finished stops the
    command with nothing to report and exit status 1 (as ``grid optimize --model`` does), the unfinished reference
    not cached; a budget spent with some methods finished reports them, exit status 0."""
    import numpy as np
    import torch

    from pndmkit.methods import get_method
    from pndmkit.noise import per_sample_noise
    from pndmkit.studies.convergence import pure_noise
    from pndmkit.studies.monitor import StudyMonitor, TimeBudgetExceeded, duration
    from pndmkit.studies.real import (cached_model_study, check_reference, check_reference_start, load_model,
                                      model_study, sweep)

    for option in ("problem", "schedule"):
        if getattr(args, option) is not None:
            raise UsageError(option, f"--{option} chooses a Gaussian-mixture study; --model uses the network's own "
                                     f"schedule and has no --{option}")
    monitor = StudyMonitor(max_minutes=args.max_minutes)
    cache = resolve_cache(args)
    steps = args.steps or list(DEFAULT_MODEL_STEPS)
    batch = 4 if args.batch is None else args.batch
    ckpt = open_model(args, grid_options="--grid")
    loaded = load_model(ckpt)
    if loaded.shape is None:
        raise UsageError("model", f"{args.model}: the network's config gives no sample shape")
    t_top = loaded.schedule.t_start if args.t_start is None else args.t_start
    check_reference_start(loaded.schedule, t_top)
    x_T = pure_noise(loaded.schedule, per_sample_noise(range(batch), loaded.shape, args.seed).astype(np.float64),
                     t_top)
    common = dict(x_T=x_T, grid=args.grid, t_start=args.t_start, t_end=args.t_end, cache=cache,
                  rebuild_cache=args.rebuild_cache)
    with blame("t_start", "t_end", "grid"):
        study = cached_model_study(ckpt, **common) if cache is not None else None
    methods = args.methods or [n for n, spec in METHODS.items() if not spec.adaptive]
    sweep_evals = sum(get_method(m).nfe(n) or 0 for m in methods for n in steps)
    monitor.time_evaluation(loaded.model, torch.from_numpy(x_T.copy()), loaded.schedule.t_start)
    monitor.line(f"{loaded.name} on {getattr(loaded.model, 'device', None) or 'cpu'}: {batch} "
                 f"noises of shape {loaded.shape}; one network evaluation of them takes "
                 f"{1000 * monitor.seconds_per_evaluation:.1f} ms (timed)")
    # the reference's cost is not estimated: DOP853 chooses its steps from the error it meets as it goes, so its
    # evaluation count (the time) is known only once it is done
    monitor.line("reference: cached" if study is not None else
                 f"reference: 2 DOP853 solves from the {batch} noises, time not estimated (DOP853 chooses how many "
                 f"network evaluations as it goes; each 1000 take about {duration(monitor.cost(1000))})")
    monitor.line(f"sweeps: {len(methods)} methods x {len(steps)} step counts = {sweep_evals} network evaluations, "
                 f"about {duration(monitor.cost(sweep_evals))} (cached sweeps cost nothing)"
                 + ("" if study is not None else "; the reference solve comes first and is not in this time"))
    results: dict = {}
    stopped: BaseException | None = None
    try:
        if study is None:
            monitor.check()
            began = monitor.elapsed()
            # the budget bounds the solve itself (checked before each network evaluation), not only the sweeps
            study = model_study(ckpt, **common, progress=tty, stop_early=monitor.check)
            monitor.line(f"reference done: {study.reference_nfe} evaluations in {duration(monitor.elapsed() - began)}, "
                         f"error estimate "
                         f"{study.reference_error:.1e}" + ("" if cache is None else f", cached in {study.cache}"))
        took: list[float] = []
        for i, name in enumerate(methods):
            monitor.check()
            began = monitor.elapsed()
            res = sweep(study, name, steps)
            took.append(monitor.elapsed() - began)
            results[name] = res
            monitor.line(f"{name}: {len(res.steps)} runs, {sum(res.nfe)} evaluations in {duration(took[-1])} "
                         f"({i + 1} of {len(methods)} methods; {monitor.remaining(took, len(methods) - i - 1)})")
    except KeyboardInterrupt as exc:
        stopped = exc
    if stopped is not None:
        why = "--max-minutes is spent" if isinstance(stopped, TimeBudgetExceeded) else "interrupted"
        if study is None:
            monitor.line(f"stopped ({why}) before the reference was finished: nothing to report; " +
                         ("--cache none keeps nothing: rerun with a --cache DIR and a larger --max-minutes (or "
                          "none)" if cache is None else
                          f"the reference is solved whole or not at all, so none of it was kept (what earlier runs "
                          f"cached in {cache} stays): rerun with the same --cache and a larger --max-minutes (or "
                          f"none); once it is finished it is cached and later runs skip it"))
        else:
            monitor.line(f"stopped ({why}) after {len(results)} of {len(methods)} methods" +
                         ("; the reference is finished, no method is: nothing to report" if not results else
                          "; the report shows the finished ones") +
                         ("" if cache is None else
                          "; what is finished stays cached: rerun the same command to go on"))
        if not results:
            if isinstance(stopped, TimeBudgetExceeded):
                return 1
            raise stopped
    ok, smallest = check_reference(study, results)
    verdict = (f"reference error {study.reference_error:.1e} is {'below' if ok else 'NOT below'} 1% of the smallest "
               f"reported error {smallest:.1e}")
    if args.plot:
        order_plot(study, results, args.plot)
    if args.json:
        out = order_json(study, results)
        out.update(reference_rtol=study.reference_rtol, reference_ok=ok, pixel_scale=study.pixel_scale,
                   error="RMS over batch and pixels of the end point minus the converged DOP853 end point (float64 "
                         "network), in the network's units; errors_pixel: the same in 8-bit grey levels")
        if stopped is not None:
            out["stopped"] = f"after {len(results)} of {len(methods)} methods"
        for name, r in results.items():
            out["methods"][name]["errors_pixel"] = [e * study.pixel_scale for e in r.errors]
        print(json_text(out, indent=2))
    else:
        print(order_table(study, results, steps))
        print(f"\n{verdict}; errors in 8-bit grey levels: multiply by {study.pixel_scale:g}")
    if stopped is not None and not isinstance(stopped, TimeBudgetExceeded):
        sys.stdout.flush()
        raise stopped
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "order", help="measure convergence orders against exact Gaussian-mixture ground truth",
        description="Error of each method's end point against the exact probability-flow trajectory of a "
                    "Gaussian-mixture problem, at several step counts; fitted order on the asymptotic range. "
                    "Methods of your own join through PNDMKIT_PLUGINS (see pndmkit --help).")
    p.add_argument("--methods", type=_methods, default=None, help="comma-separated method names (default: all)")
    p.add_argument("--problem", choices=sorted(PROBLEMS), default=None,
                   help="built-in problem (default: gmm2d, unless --model)")
    p.add_argument("--model", default=None, metavar="digits|PATH|ORG/NAME",
                   help="a network instead of a problem: " + NETWORK_HELP + "; error against a converged float64 "
                        "DOP853 solution from the same noises (default: none, a --problem). The reference costs "
                        "minutes to an hour on a CPU from scratch and is cached (--cache); in Python any callable: "
                        "pndmkit.studies.real.model_study; README.md \"Bring your own network\"")
    add_cache_options(p, holds="cached references and sweeps")
    add_network_options(p)
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default=None, help="noise schedule (default: linear-vp)")
    p.add_argument("--grid", choices=[g for g, kind in GRID_KINDS.items() if not kind.discrete_only], default="uniform",
                   help="grid kind; uniform is equal steps in t")
    p.add_argument("--steps", type=_int_list, default=None,
                   help=f"comma-separated increasing step counts, at most {MAX_STEPS} (default: "
                        f"{','.join(map(str, DEFAULT_STEPS))}; with --model {','.join(map(str, DEFAULT_MODEL_STEPS))})")
    p.add_argument("--t-start", type=finite_float, default=None, help="start time (default: the schedule's)")
    p.add_argument("--t-end", type=finite_float, default=None,
                   help="end time (default: where s = sqrt((1-abar)/abar) = 0.1, see pndmkit.studies.convergence)")
    p.add_argument("--batch", type=positive_int, default=None, help="number of start points x_T (default: 8; with --model 4)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of x_T")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE", type=_plot_file, default=None,
                   help="write a log-log plot of error vs NFE to FILE: .png, .pdf, .svg or another matplotlib format "
                        "written atomically; an existing FILE is refused unless --overwrite (default: no plot)")
    p.add_argument("--overwrite", action="store_true", help="let --plot replace an existing FILE (default: refuse it)")
    p.set_defaults(func=run)
