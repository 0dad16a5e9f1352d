"""How much any grid can cut: iPNDM at NFE 6 on an 8-dimensional four-mode mixture, against the defaults.

The mixture is ``gmm32d(dim=8, n_components=4)`` of :mod:`pndmkit.problems.builtin` (its default seed), noises of
seed 0, the whole interval (the built-in end points, down to ``abar = 1``). A run there costs milliseconds and
the reference is exact, so the ceiling can be measured on thousands of noises, where the 95% interval of a cut
is a few points wide (on 256 noises it is about 30 points wide):

1. **Ceiling, out of sample.** :func:`analysis.grid_bound.search` (differential evolution over every free step,
   then Nelder-Mead) on the fit noises ``0 .. fit - 1``; its grid judged on the held-out noises
   ``fit .. fit + heldout - 1`` against the best built-in grid there, with the 95% paired bootstrap interval
   (:func:`pndmkit.studies.grid_opt.reduction_interval`).
2. **Ceiling, in sample on the held-out noises.** The same search fitted on the held-out noises themselves: no
   grid cuts more on those noises (as far as a randomised search can tell), so this bounds what any grid,
   fitted on anything, can show there. Its grid is judged once more on a third set (the next ``heldout``
   noises).
3. **The defaults.** :func:`pndmkit.studies.grid_opt.optimize` with every default (2048 calibration noises
   ``0-2047``, 2048 held-out ``2048-4095``, degree 3, the first time free, fallback on): what it reports, and its
   searched grid judged on the large held-out set of 1; key ``defaults``. The same with ``first_time="fixed"``
   (key ``defaults_fixed``): what the free first time adds.
4. **How noisy 256 held-out noises are.** The cut of the defaults' grids and of the ceiling grid on each
   disjoint block of 256 noises of the held-out set of 1.
5. **The first time free as well** (``--free-start``, off by default; key ``free_start``). 1 and 2 again with
   the first time searched too, in ``(t_1, 999]`` (``free_start`` of :func:`analysis.grid_bound.search`): the
   noise ``x_T`` is taken as the state at the grid's first time (as diffusers' 'leading' spacing does), the
   error still measured against the exact flow from ``x_T`` at ``t = 999``, and the baseline the best built-in
   grid from 999 as in 1-2. This is the ceiling of ``optimize``'s default, ``first_time="free"``.

The baseline of every cut is the best built-in grid kind *on the noises the cut is measured on* (as
``optimize`` reports it); the best kind on the fit noises is reported too (``start_kind``).

Run: ``python -m analysis.grid_opt_ceiling [--fit 4096] [--heldout 4096] [--free-start]
[--out analysis/results/grid_opt_ceiling.json]``, 5-7 CPU-minutes for 1-4 (``cpu_seconds`` in the JSON) and
about as much again for 5 (its own ``seconds`` and ``cpu_seconds``). Every number is deterministic except
``seconds`` and ``cpu_seconds``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from analysis import grid_bound
from pndmkit.methods import get_method
from pndmkit.problems.builtin import gmm32d
from pndmkit.stability import StabilityWarning
from pndmkit.studies import grid_opt
from pndmkit.studies.targets import StudyTarget
from analysis import portable
from analysis.tables import RESULTS, add_cache_and_out, add_search_options


METHOD, NFE, BLOCK = "ipndm", 6, 256


def judge(study, grid: np.ndarray) -> dict:
    """Held-out error of ``grid`` on ``study``, the best built-in kind there, the cut and its 95% interval."""
    spec = get_method(METHOD)
    mine = grid_opt.sample_errors(study, spec, np.asarray(grid, dtype=np.float64))
    per = {k: grid_opt.sample_errors(study, spec, g)
           for k, g in grid_opt.builtin_grids(study, len(grid) - 1, grid_opt.BUILTIN_KINDS).items()}
    base = min(per, key=lambda k: per[k].mean())
    error, baseline = float(np.sqrt(mine.mean())), float(np.sqrt(per[base].mean()))
    return {"samples": int(mine.size), "error": error, "baseline_kind": base, "baseline_error": baseline,
            "reduction": 1.0 - error / baseline,
            "reduction_interval": list(grid_opt.reduction_interval(mine, per[base]))}


def blocks(study, grid: np.ndarray) -> list[float]:
    """Cut of ``grid`` against the best built-in kind of each disjoint block of :data:`BLOCK` noises of ``study``."""
    spec = get_method(METHOD)
    mine = grid_opt.sample_errors(study, spec, np.asarray(grid, dtype=np.float64))
    per = {k: grid_opt.sample_errors(study, spec, g)
           for k, g in grid_opt.builtin_grids(study, len(grid) - 1, grid_opt.BUILTIN_KINDS).items()}
    cuts = []
    for i in range(len(mine) // BLOCK):
        part = slice(i * BLOCK, (i + 1) * BLOCK)
        base = min(float(np.mean(e[part])) for e in per.values())
        cuts.append(1.0 - float(np.sqrt(np.mean(mine[part]) / base)))
    return cuts


def ceilings(fit, held, third, settings: dict, free_start: bool = False) -> tuple[dict, dict]:
    """Parts 1 and 2: the search fitted on ``fit`` judged on ``held``, and fitted on ``held`` judged on ``third``."""
    out_of_sample = grid_bound.search(fit, held, METHOD, NFE, free_start=free_start, **settings)
    out_of_sample["judged"] = judge(held, np.asarray(out_of_sample["grid"]))
    what, judged = "free first time, " if free_start else "", out_of_sample["judged"]
    print(f"ceiling grid ({what}fitted on {len(fit.x_T)}): held-out cut {100 * judged['reduction']:.1f}% "
          f"{np.round(100 * np.asarray(judged['reduction_interval']), 1)}", flush=True)

    in_sample = grid_bound.search(held, third, METHOD, NFE, free_start=free_start, **settings)
    in_sample["judged_third"] = judge(third, np.asarray(in_sample["grid"]))
    print(f"{what}fitted on the held-out noises: in-sample cut {100 * in_sample['calibration_reduction']:.1f}%, "
          f"on the third set {100 * in_sample['judged_third']['reduction']:.1f}%", flush=True)
    return out_of_sample, in_sample


def run_defaults(mixture, held, **options) -> tuple[dict, "grid_opt.OptimizedGrid"]:
    """Part 3: :func:`pndmkit.studies.grid_opt.optimize` with its defaults (and ``options``), what it reports and
    its searched grid judged on ``held``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", grid_opt.GridFallbackWarning)  # recorded
        t = time.perf_counter()
        res = grid_opt.optimize(METHOD, mixture, NFE, **options)
        seconds = time.perf_counter() - t
    row = {"calibration": res.calibration, "heldout": res.heldout, "degree": res.degree,
           "first_time": res.first_time, "evaluations": res.evaluations, "seconds": seconds,
           "fell_back": res.fell_back, "calibration_error": res.calibration_error,
           "start_kind": grid_opt.evaluate(METHOD, mixture, res.start_grid, calibration=0,
                                           heldout=res.calibration)["baseline_kind"],
           "reported": {"error": res.heldout_error, "baseline_kind": res.baseline_kind,
                        "baseline_error": res.baseline_error, "reduction": res.reduction,
                        "reduction_interval": list(res.heldout_interval)},
           "searched_grid": res.searched_grid.tolist(), "judged": judge(held, res.searched_grid)}
    print(f"defaults{''.join(f', {k}={v}' for k, v in options.items())}: reported {100 * res.reduction:.1f}% on "
          f"{res.heldout}, {100 * row['judged']['reduction']:.1f}% on the {len(held.x_T)} held-out noises",
          flush=True)
    return row, res


def main(argv: list[str] | None = None) -> dict:
    from pndmkit.commands.args import positive_int

    p = argparse.ArgumentParser(prog="python -m analysis.grid_opt_ceiling", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--fit", type=positive_int, default=4096, help="noises 0..N-1 the ceiling grid is fitted on")
    p.add_argument("--heldout", type=positive_int, default=4096, help="the next N noises, the grids are judged on")
    add_search_options(p, popsize=10, generations=40, bound=2.0, polish=200)
    p.add_argument("--free-start", action="store_true",
                   help="also measure the ceiling with the first time searched (part 5, key 'free_start')")
    add_cache_and_out(p, RESULTS / "grid_opt_ceiling.json", metavar="FILE.json", writes="JSON file path the results are written to (the shipped one is overwritten)", cache=False)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", StabilityWarning)  # diverging trial grids are measured, not warned about
    tic, cpu = time.perf_counter(), time.process_time()
    mixture = gmm32d(dim=8, n_components=4)
    target = StudyTarget.resolve(mixture)
    fit = target.study(0, args.fit)
    held = target.study(args.fit, args.heldout)
    third = target.study(args.fit + args.heldout, args.heldout)
    config = {k: v for k, v in vars(args).items() if k != "free_start"}  # the key 'free_start' says it
    settings = dict(popsize=args.popsize, generations=args.generations, bound=args.bound, polish=args.polish,
                    seed=args.seed, save=lambda row: None)

    out_of_sample, in_sample = ceilings(fit, held, third, settings)
    grid = np.asarray(out_of_sample["grid"])

    defaults, res = run_defaults(mixture, held)
    fixed, res_fixed = run_defaults(mixture, held, first_time="fixed")
    spread = {"block": BLOCK, "defaults": blocks(held, res.searched_grid),
              "defaults_fixed": blocks(held, res_fixed.searched_grid), "ceiling": blocks(held, grid)}
    out = {"problem": "gmm32d(dim=8, n_components=4)", "method": METHOD, "nfe": NFE, "noise_seed": 0,
           "fit": [0, args.fit], "heldout": [args.fit, args.fit + args.heldout],
           "third": [args.fit + args.heldout, args.fit + 2 * args.heldout], "config": portable(config),
           "ceiling": out_of_sample, "in_sample_on_heldout": in_sample, "defaults": defaults,
           "defaults_fixed": fixed,
           "blocks_of_256": spread, "seconds": time.perf_counter() - tic,
           "cpu_seconds": time.process_time() - cpu}
    for name in ("defaults", "defaults_fixed", "ceiling"):
        v = np.asarray(spread[name])
        print(f"{name} grid on {v.size} blocks of {BLOCK}: cut {100 * v.min():.0f}% to {100 * v.max():.0f}% "
              f"(median {100 * np.median(v):.0f}%)", flush=True)
    if args.free_start:
        tic, cpu = time.perf_counter(), time.process_time()
        free_ceiling, free_in_sample = ceilings(fit, held, third, settings, free_start=True)
        out["free_start"] = {"ceiling": free_ceiling, "in_sample_on_heldout": free_in_sample,
                             "seconds": time.perf_counter() - tic, "cpu_seconds": time.process_time() - cpu}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
