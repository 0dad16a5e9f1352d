"""``pndmkit compare``: pndmkit's methods against diffusers' schedulers at equal NFE on exact ground truth.

Prints the by-NFE table: a row per NFE with the best pndmkit method and the best peer (each with its grid
option; ``-`` for a side with no run at that NFE), their error ratio and its 95% paired bootstrap interval over
samples (both best runs fixed as chosen on all the samples; ``-`` below 8 samples), then, where a peer ran on
pndmkit's grids (``ipndm-pndmkit-grid``, ...), the same table with those peers in; a row there whose best peer is
pndmkit's own method on the same grid (``ipndm-pndmkit-grid`` against ``ipndm``) is marked ``parity check``, since
it checks two implementations of one method. ``--json`` prints one JSON object whose ``by_nfe`` maps each NFE to
the best pndmkit method, the best peer, their error ratio and ``ratio_interval``, and ``skipped`` lists each
solver with no run at an NFE (``side``, ``method``, ``nfe_target``, ``reason``, ``cases``), which the table names
under it with the reason. Files are written only with ``--out DIR``, each atomically, and never over an earlier run's
files there unless ``--overwrite`` says so (one run at a time: a run holds the lock ``DIR/.pndmkit-compare.lock``
from that check to its last write, and a second run into DIR is refused at once): ``compare.json`` (summaries and the best option per solver, NFE and
case), ``compare.csv`` (the same best rows, then the summaries of each row's NFE: ``ratio``, ``vs_builtin``,
``vs_peer`` and the ends of their 95% intervals),
``compare_runs.csv`` (every run, the optimised grids' and fitted solvers' with their times) and ``compare.md``
(summary tables). ``compare.json`` and ``--json`` are strict JSON: a number that is not finite (the error of a run
that raised or blew up) is ``null``.
``--peers`` with no names runs pndmkit's methods alone (no diffusers needed) and reports their
best per NFE. ``--optimized-grids`` also optimises the grids of some methods per case and NFE and prints (and
writes) them in a table of their own; they never enter the built-in summaries. ``--optimized-solvers`` also fits,
per case and NFE, iPNDM's grid and per-step weights on the same calibration noises (``ipndm-fitted``: a sampler for
one step count, not a method with an order; ``--optimized-solvers ipndm-x0`` fits on iPNDM's data-prediction form
instead, ``ipndm-x0-fitted``, and ``--optimized-solvers ipndm ipndm-x0`` both) and reports it in that table, never
in the built-in summaries nor among ``--auto``'s choices; ``--optimize-maxfev``, ``--optimize-calibration`` and
``--optimize-first-time`` tune both; ``--out``'s ``compare_runs.csv`` holds its weights too, ``compare.json`` its
times and weights (``fitted_solvers``).
``--auto`` also chooses, per case and NFE, one pndmkit method and grid (alone: among the built-in grids; with
``--optimized-grids``, the optimised ones too) from calibration noises of its own (each rule of
``pndmkit.studies.compare.AUTO_RULES``), runs the choice on the case's samples and prints (and writes) it in a table
of its own, also apart from the built-in summaries.
``--model digits`` (or a checkpoint path) runs the same head-to-head on
a network against its converged reference (:func:`pndmkit.studies.compare.compare_model`), reusing the cached
references of ``--cache`` and saying on stderr, before it starts, each reference block it must solve and its
timed cost; ``--cache``, ``--first-noise``, ``--rebuild-cache``, ``--peer-times`` and ``--scheduler-config``
are refused without ``--model``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pndmkit._io import check_writable_folder, json_text, locked_folder
from pndmkit.commands.args import MAX_STEPS, int_in_range, nonnegative_int, positive_int, step_count
from pndmkit.commands.network import (NETWORK_HELP, add_cache_options, add_network_options, open_model,
                                      refuse_without_model, resolve_cache)
from pndmkit.errors import UsageError, WriteError
from pndmkit.methods import unknown_method_reason
from pndmkit.studies.grid_opt import MAX_NOISES
from pndmkit.studies.solver_file import BASE_METHOD, BASE_METHODS
from pndmkit.studies.statistics import INTERVAL_MIN_SAMPLES
from pndmkit.studies.compare import NFES, OPTIMIZED_DEFAULT, SCHEDULES, CompareConfig, compare, with_options
from pndmkit.studies.reports import (auto_summary, compare_result_paths, compare_summary, optimized_summary,
                                     write_compare_results)


def _fixed_step_method(text: str) -> str:
    """A registered method with a fixed NFE or a compare variant (argparse type): unknown and adaptive names are
    usage errors."""
    from pndmkit.studies.compare import compare_methods

    known = compare_methods()
    if text not in known:
        raise argparse.ArgumentTypeError(f"unknown or adaptive method {text!r}{unknown_method_reason(text)}; "
                                         f"fixed-step methods: {', '.join(known)}")
    return text


def _registered_fixed_step_method(text: str) -> str:
    """A registered method with a fixed NFE (argparse type of ``--optimized-grids``): the compare variants, which
    run only when ``--methods`` names them, and unknown and adaptive names are usage errors."""
    from pndmkit.studies.compare import VARIANTS, pndmkit_methods

    known = pndmkit_methods()
    if text in known:
        return text
    what = (f"{text!r} is a compare variant (run by --methods), not a registered method" if text in VARIANTS
            else f"unknown or adaptive method {text!r}{unknown_method_reason(text)}")
    raise argparse.ArgumentTypeError(f"{what}; grids are optimised for registered fixed-step methods: "
                                     f"{', '.join(known)}")


def _base_method(text: str) -> str:
    """A base method of a fitted solver (argparse type of ``--optimized-solvers``): another name is a usage error
    naming the bases."""
    if text not in BASE_METHODS:
        raise argparse.ArgumentTypeError(f"unknown base {text!r}; a fitted solver is built on one of "
                                         f"{', '.join(BASE_METHODS)}")
    return text


def _problem(text: str) -> str:
    from pndmkit.problems import PROBLEMS

    if text not in PROBLEMS:
        raise argparse.ArgumentTypeError(f"unknown problem {text!r}; built-in problems: {', '.join(PROBLEMS)}")
    return text

def _check_model_options(args: argparse.Namespace) -> None:
    """Options that belong to ``--model`` alone, or that a ``--model`` run does not take, are refused by name."""
    refuse_without_model(args, ("cache", "rebuild_cache", "first_noise", "peer_times", "scheduler_config"),
                         "a network head-to-head")
    if args.model is None:
        return
    for name in ("problem", "schedule"):
        if getattr(args, name) is not None:
            raise UsageError(name, f"--{name} chooses a Gaussian-mixture case; --model runs the network on its own "
                                   f"schedule and has no --{name}")
    if args.optimized_grids is not None:
        raise UsageError("optimized_grids", "--optimized-grids is not run with --model (optimising a grid on a "
                                            "network costs CPU-hours: pndmkit grid optimize --model, or python -m "
                                            "analysis.grid_opt); drop it")
    if args.optimized_solvers is not None:
        raise UsageError("optimized_solvers", "--optimized-solvers is not run with --model (fitting a solver on a "
                                              "network starts with a grid search that costs CPU-hours: "
                                              "pndmkit.studies.solver_opt.optimize_solver); drop it")
    resolve_cache(args)  # --rebuild-cache with --cache none, refused before anything runs


#: the lock a compare run holds on its --out folder (:func:`pndmkit._io.locked_folder`)
LOCK_FILE = ".pndmkit-compare.lock"


def _refuse_earlier_results(args: argparse.Namespace) -> None:
    """Refuse an --out that holds an earlier run's results, unless --overwrite."""
    taken = [p.name for p in compare_result_paths(Path(args.out)) if p.exists()]
    if taken and not args.overwrite:
        raise UsageError("out", f"--out {args.out!r} already holds {', '.join(taken)} (an earlier run's "
                                f"results); choose another folder, or add --overwrite to replace them")


def run(args: argparse.Namespace) -> int:
    """One run at a time writes into --out: it holds the folder's lock from its check of the folder to its last
    write, and a second run is refused at once (one line, exit 2), writing nothing."""
    if args.out is None:
        return _run(args)
    check_writable_folder(args.out, "out", option="--out")  # before anything is made
    _refuse_earlier_results(args)  # here too, so that a refused run leaves no lock file behind
    with locked_folder(args.out, LOCK_FILE, what="compare run"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    _check_model_options(args)
    cfg = CompareConfig.quick() if args.quick else CompareConfig()
    cfg = with_options(cfg, problems=tuple(args.problem) if args.problem else None,
                       schedules=tuple(args.schedule) if args.schedule else None,
                       nfes=tuple(args.nfes) if args.nfes else None, n=args.n, seed=args.seed,
                       methods=tuple(args.methods) if args.methods else None,
                       peers=tuple(args.peers) if args.peers is not None else None)
    if args.no_grids:
        cfg = with_options(cfg, grids=False)
    if args.optimize_solver_maxfev is not None and args.optimized_solvers is None:
        raise UsageError("optimize_solver_maxfev", "--optimize-solver-maxfev tunes --optimized-solvers, which is not "
                                                   "given; add it or drop --optimize-solver-maxfev")
    if args.optimized_grids is None and args.optimized_solvers is None:
        for name in ("optimize_maxfev", "optimize_calibration", "optimize_first_time"):
            if getattr(args, name) is not None:
                option = "--" + name.replace("_", "-")
                raise UsageError(name, f"{option} tunes --optimized-grids and --optimized-solvers, neither of which "
                                       f"is given; add one of them or drop {option}")
    else:  # --optimized-grids with no names: the default set; --optimized-solvers with none: ipndm
        grids = None if args.optimized_grids is None else tuple(args.optimized_grids) or True
        solvers = None if args.optimized_solvers is None else tuple(args.optimized_solvers) or True
        cfg = with_options(cfg, optimized_grids=grids, optimized_solvers=solvers,
                           optimize_maxfev=args.optimize_maxfev, optimize_calibration=args.optimize_calibration,
                           optimize_solver_maxfev=args.optimize_solver_maxfev,
                           optimize_first_time=args.optimize_first_time)
    if args.auto:
        cfg = with_options(cfg, auto=True, auto_calibration=args.auto_calibration)
    elif args.auto_calibration is not None:
        raise UsageError("auto_calibration", "--auto-calibration tunes --auto, which is not given; add --auto or "
                                             "drop --auto-calibration")
    if args.out is not None:
        check_writable_folder(args.out, "out", option="--out")  # before the comparison, not after it
        _refuse_earlier_results(args)  # under the lock (see run), where no other run can write them any more
    elif args.overwrite:
        raise UsageError("overwrite", "--overwrite lets --out replace an earlier run's files, and no --out is "
                                      "given; add --out DIR or drop --overwrite")
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
    if args.model is not None:
        from pndmkit.studies.compare import compare_model

        ckpt = open_model(args, grid_options="the study's grid options; --no-grids keeps the default grid only, "
                                             "--optimized-grids adds searched ones")
        result = compare_model(ckpt, cfg, first=args.first_noise or 0,
                               cache=resolve_cache(args), rebuild_cache=args.rebuild_cache,
                               peer_times=args.peer_times or "level", log=log)
        result["config"]["model"] = args.model
    else:
        result = compare(cfg, log=log)
    failed = None
    if args.out is not None:
        try:
            for path in write_compare_results(result, Path(args.out)):
                log(f"wrote {path}")
        except WriteError as exc:  # a full disk, a read-only filesystem: the report is printed all the same
            failed = exc
    if args.json:
        print(json_text({"by_nfe": result["by_nfe"], "by_nfe_shared_grids": result["by_nfe_shared_grids"],
                         "by_nfe_peers_on_pndmkit_grids": result["by_nfe_peers_on_pndmkit_grids"],
                         **{k: result[k] for k in ("by_nfe_optimized", "optimized_skipped", "optimized_grids",
                                                   "fitted_solvers", "by_nfe_auto") if k in result},
                         "config": result["config"], "skipped": result["skipped"],
                         "sw_floor": {f"{c['problem']}/{c['schedule']}": c["sw_floor"] for c in result["cases"]}}))
    else:
        print(compare_summary(result))
        from pndmkit.studies.peers import PEERS

        custom = {name for name, spec in PEERS.items() if not spec.builtin}
        if any(r["side"] == "peer" and r["method"] in custom for c in result["cases"] for r in c["best"]):
            print(f"\npeers also on pndmkit's grids ({', '.join(sorted(custom & set(cfg.peers or PEERS)))}):\n"
                  f"{compare_summary(result, 'by_nfe_peers_on_pndmkit_grids')}")
        if "by_nfe_optimized" in result:
            what = ("optimised grids" if cfg.optimized_grids else "") + (
                (" and " if cfg.optimized_grids else "") + "fitted solvers" if cfg.optimized_solvers else "")
            print(f"\n{what} (apart from the table above; error / error ratios as above):\n"
                  f"{optimized_summary(result)}")
        if "by_nfe_auto" in result:
            print(f"\nautomatic choice from calibration noises (apart from the tables above; error / error ratios "
                  f"as above):\n{auto_summary(result)}")
    if failed is not None:
        raise UsageError("out", f"{failed}; the files of --out are not all written: the report "
                                "printed above on stdout is what this run kept; free space or choose a writable "
                                "--out and run again")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="head-to-head with diffusers' schedulers at equal NFE (needs diffusers)",
                       description="Run every pndmkit method and diffusers scheduler on built-in Gaussian-mixture "
                                   "problems at equal NFE; report end-point errors against the exact trajectory "
                                   "and distances to p_0; with --model, on a network against its converged "
                                   "reference from the same noises.")
    p.add_argument("--problem", nargs="+", type=_problem, help="built-in problems (default: gmm2d gmm32d)")
    p.add_argument("--model", default=None, metavar="digits|PATH|ORG/NAME",
                   help="a network instead of the mixtures: " + NETWORK_HELP + "; every solver drives it from the "
                        "same noises, error against its converged float64 reference (pndmkit.studies.compare."
                        "compare_model; default: none, the mixtures)")
    p.add_argument("--first-noise", type=nonnegative_int, default=None, metavar="I",
                   help="--model only: index of the first noise (default 0; the shipped cache holds the digits "
                        "UNet's noises 0-287)")
    add_cache_options(p, note="; analysis/results/real_cache ships the digits UNet's")
    p.add_argument("--peer-times", choices=("level", "timestep"), default=None,
                   help="--model only: what a diffusers scheduler's call tells the network: the time of the level "
                        "the scheduler assumes (default, as on the mixtures) or its timesteps entry, rounded to an "
                        "integer on Karras and Lu-lambda grids as in a pipeline")
    add_network_options(p, study=False, model_only=True)
    p.add_argument("--schedule", nargs="+", choices=sorted(SCHEDULES), help="schedules (default: both)")
    # dest "nfes", CompareConfig's field, so that the study's errors about nfes name --nfe
    p.add_argument("--nfe", dest="nfes", nargs="+", type=step_count,
                   help=f"target NFEs, at most {MAX_STEPS} (default: {' '.join(map(str, NFES))})")
    p.add_argument("--n", type=positive_int, help="samples per case (default 1000; 256 from 8 dimensions up; with "
                                                   "--model the noises, default 32)")
    p.add_argument("--seed", type=nonnegative_int, help="seed of the start samples (default 0)")
    p.add_argument("--methods", nargs="+", type=_fixed_step_method,
                   help="pndmkit methods (default: every non-adaptive registered one; also the variants of "
                        "pndmkit.studies.compare.VARIANTS, such as dpm-solver++-3m-nolof, run only when named)")
    p.add_argument("--peers", nargs="*", help="peers (default: all; give none to run pndmkit only)")
    p.add_argument("--no-grids", action="store_true", help="default grid only, no search over grid options")
    p.add_argument("--optimized-grids", nargs="*", type=_registered_fixed_step_method, metavar="METHOD",
                   help="also optimise these methods' grids per case and NFE (pndmkit.studies.grid_opt.optimize) and report "
                        f"them apart (default: none; no names: those of {' '.join(OPTIMIZED_DEFAULT)} among --methods, "
                        "the others named under the table); a method and NFE with nothing to search (one step with "
                        "the first time fixed, or no step that fits) is named under the table, not optimised; "
                        "--out's compare.json holds each grid's times (optimized_grids)")
    p.add_argument("--optimized-solvers", nargs="*", type=_base_method, metavar="BASE",
                   help="also fit a solver per case, NFE and base method (pndmkit.studies.solver_opt.optimize_solver: "
                        "the base's grid and per-step weights fitted on the calibration noises, a sampler for one step "
                        "count, not a method with an order) and report it apart as BASE-fitted, with the optimised "
                        f"grids (default: none; bases: {' '.join(BASE_METHODS)}; no names: {BASE_METHOD}, as ipndm-fitted; "
                        "ipndm-x0 weighs past x0 predictions through the data-prediction transfer); --methods must "
                        "then include each base, whose built-in grids its fit is set against; --out's compare.json "
                        "holds each one's times and weights (fitted_solvers)")
    p.add_argument("--optimize-maxfev", type=positive_int, metavar="N",
                   help=f"--optimized-grids: runs per optimisation, at most; --optimized-solvers: runs of the grid "
                        f"search each fit starts from, at most (its weight search has its own bound, "
                        f"--optimize-solver-maxfev) (default {CompareConfig.optimize_maxfev}; at most "
                        f"{MAX_NOISES})")
    p.add_argument("--optimize-solver-maxfev", type=positive_int, metavar="N",
                   help="--optimized-solvers: runs of each weight search, at most, the Jacobian's included (default: "
                        "40 x (P + 1), at least 200, P the grid's parameters, the first time if free and the table's "
                        "weights: 720 at NFE 5 with the first time fixed, as here by default, 760 free; at most "
                        f"{MAX_NOISES})")
    p.add_argument("--optimize-calibration", type=positive_int, metavar="N",
                   help=f"--optimized-grids, --optimized-solvers: calibration noises per optimisation (default "
                        f"{CompareConfig.optimize_calibration})")
    p.add_argument("--optimize-first-time", choices=("fixed", "free"), default=None,
                   help=f"--optimized-grids, --optimized-solvers: 'fixed' keeps the built-in grids' first time "
                        f"(default {CompareConfig.optimize_first_time}: every row of a case starts from the same "
                        "state); 'free' searches it too, as pndmkit grid optimize does by default")
    p.add_argument("--auto", action="store_true",
                   help="also choose one pndmkit method and grid per case and NFE from calibration noises of its own "
                        "(every rule of pndmkit.studies.compare.AUTO_RULES) among the built-in grids (and the "
                        "optimised ones with --optimized-grids), run it on the case's samples and report it apart")
    p.add_argument("--auto-calibration", type=int_in_range(INTERVAL_MIN_SAMPLES, MAX_NOISES), metavar="N",
                   help=f"--auto: calibration noises of the choice, from {INTERVAL_MIN_SAMPLES} (the interval rule's "
                        f"bootstrap) to {MAX_NOISES} (default {CompareConfig.auto_calibration})")
    p.add_argument("--quick", action="store_true", help="a few-second run (one problem, two NFEs, few solvers, each "
                                                         "method on its default grid only, as --no-grids: 'best "
                                                         "built-in' is then that grid)")
    p.add_argument("--json", action="store_true", help="print one JSON object (by_nfe, config)")
    p.add_argument("--out", metavar="DIR", help="write compare.{json,csv,md} and compare_runs.csv into DIR "
                                                "(default: write no files, print only); refused where DIR already "
                                                "holds one of them, unless --overwrite; one run at a time: a run "
                                                f"holds the lock DIR/{LOCK_FILE} from its check of DIR to its last "
                                                "write, and a second run into DIR is refused at once, changing "
                                                "nothing (the operating system releases the lock when its run "
                                                "ends, even by a crash or a kill)")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out replace the files of an earlier run in DIR (default: refuse them)")
    p.set_defaults(func=run)
