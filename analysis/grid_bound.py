"""A global search over every free step of a grid on the digits UNet: does it cut past the smooth family?

:func:`pndmkit.studies.grid_opt.optimize` moves the log step lengths of the best built-in grid by a smooth (degree-3)
Legendre polynomial and runs Nelder-Mead from there, a local search. This study asks whether that family or
that local search is what limits the cut on the network. For each NFE budget it takes the method that
``analysis/grid_opt.py`` found best on the built-in grids (``--from``, default
``analysis/results/grid_opt_digits.json``), frees every step (``steps - 1`` parameters: the same family at full
degree, which reaches every decreasing grid with the same end times), and searches

1. globally: :func:`scipy.optimize.differential_evolution` (Sobol initial population that also holds the best
   built-in grid, ``--popsize`` x parameters members, ``--generations`` generations, each parameter in
   ``[-bound, bound]``: every step may shrink or grow by up to ``e**bound`` per Legendre mode),
2. then locally: Nelder-Mead from the best point found,

minimising the RMS error on the same calibration noises as ``analysis/grid_opt.py`` (noises 0-95, converged
float64 references from ``--cache``). The best calibration error is what a grid reaches *in sample*, where
fitting is easiest; the JSON reports it as a cut of the best built-in grid's calibration error, and the
held-out error of the same grid (noises 96-191) as a cut of the held-out baseline.

The default budgets are NFE 5 and 6, where the smooth family's cut is smallest *in sample* (25% and 21%): if a
global search over every step does not reach 30% on the very noises it fits, a 30% target there is out of reach
of grid choice for that method (as far as a randomised search can tell; it is not a proof). At NFE 8 and 10 the
smooth family already cuts 30% or more in sample (what it loses is on the held-out noises); a run there costs about
2 CPU-hours (``--nfe 10``; the population is a power of two, 64 for 9 parameters).

Run: ``python -m analysis.grid_bound [--nfe 5,6] [--out analysis/results/grid_bound_digits.json]``. One
objective evaluation runs the method on 96 noises in float64 (about 2.7 s at NFE 5 and 3.2 s at NFE 6 on one
CPU thread); the defaults spent 31 and 33 CPU-minutes. The JSON is rewritten after every generation, so
an interrupted run keeps its best point so far (``stage`` says where it stopped).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from pndmkit.methods import get_method, steps_for_nfe
from pndmkit.stability import StabilityWarning
from pndmkit.studies import grid_opt
from pndmkit.studies.targets import StudyTarget

from analysis import portable
from analysis.tables import RESULTS, add_cache_and_out, add_search_options, ints, write_json


def search(cal, held, method: str, nfe: int, *, popsize: int, generations: int, bound: float, polish: int,
           seed: int, save, free_start: bool = False) -> dict:
    """Differential evolution then Nelder-Mead over every free step of ``method``'s grid at ``nfe``.

    The first and last times are the study's (``cal.t_start``, ``cal.t_end``); with ``free_start`` the first
    time is searched too, in ``(t_1, cal.t_start]`` (:class:`pndmkit.studies.grid_opt.FreeFirstTime`, its
    parameter in ``[0, 1]``; the noise is the state at the first time, the reference still the flow from
    ``cal.t_start``, as ``optimize(first_time="free")`` does), and the row's
    ``settings`` say ``free_start``. The built-in grids it starts from and is measured against keep both ends.
    """
    from scipy.optimize import differential_evolution, minimize

    spec = get_method(method)
    steps = steps_for_nfe(spec, nfe)
    cal_builtin = {k: grid_opt.rms_error(cal, spec, g) for k, g in grid_opt.builtin_grids(cal, steps,
                                                                                 grid_opt.BUILTIN_KINDS).items()}
    held_builtin = {k: grid_opt.rms_error(held, spec, g) for k, g in grid_opt.builtin_grids(held, steps,
                                                                                   grid_opt.BUILTIN_KINDS).items()}
    kind = min(cal_builtin, key=cal_builtin.get)
    family = grid_opt.GridFamily(grid_opt.builtin_grids(cal, steps, [kind])[kind], steps - 1)
    bounds = [(-bound, bound)] * family.size
    if free_start:
        family, bounds = grid_opt.FreeFirstTime(family, cal.t_start), bounds + [(0.0, 1.0)]
    best = {"err": cal_builtin[kind], "grid": family.grid(np.zeros(family.size)), "theta": np.zeros(family.size)}
    count = [0]
    t0 = time.perf_counter()
    objective = grid_opt.search_objective(cal, spec, family, best, count)

    def row(stage: str) -> dict:
        g = best["grid"]
        base_cal = cal_builtin[kind]
        base_held = min(held_builtin.values())
        held_err = grid_opt.rms_error(held, spec, g)
        return {"method": method, "nfe": nfe, "steps": steps, "stage": stage, "start_kind": kind,
                "calibration_builtin": cal_builtin, "heldout_builtin": held_builtin,
                "calibration_error": best["err"], "calibration_reduction": 1.0 - best["err"] / base_cal,
                "heldout_error": held_err, "heldout_reduction": 1.0 - held_err / base_held,
                "grid": g.tolist(), "evaluations": count[0], "seconds": time.perf_counter() - t0,
                "settings": {"popsize": popsize, "generations": generations, "bound": bound, "polish": polish,
                             "seed": seed, **({"free_start": True} if free_start else {})}}

    gen = [0]

    def callback(*_args, **_kw):
        gen[0] += 1
        save(row(f"differential evolution, generation {gen[0]}"))
        print(f"  NFE {nfe} generation {gen[0]}: best calibration error {best['err']:.5g} "
              f"({count[0]} runs, {time.perf_counter() - t0:.0f} s)", flush=True)

    differential_evolution(objective, bounds, popsize=popsize, maxiter=generations,
                           init="sobol", x0=np.zeros(family.size), seed=seed, polish=False, tol=0.0,
                           callback=callback)
    simplex = np.vstack([best["theta"], best["theta"] + 0.1 * np.eye(family.size)])
    minimize(objective, best["theta"], method="Nelder-Mead",
             options={"maxfev": polish * family.size, "xatol": 1e-4, "fatol": 1e-5, "initial_simplex": simplex})
    out = row("differential evolution + Nelder-Mead")
    save(out)
    return out


def main(argv: list[str] | None = None) -> dict:
    from pndmkit.commands.args import positive_int

    p = argparse.ArgumentParser(prog="python -m analysis.grid_bound", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Cost: about 30 CPU-minutes per budget at NFE 5-6 with the defaults; "
                                       "see the module docstring.")
    p.add_argument("--model", default="digits", help="network: checkpoint name or path")
    p.add_argument("--nfe", type=ints, default="5,6", help="NFE budgets, comma-separated")
    p.add_argument("--from", dest="source", default=str(RESULTS / "grid_opt_digits.json"),
                   help="analysis/grid_opt.py's JSON, read for the best method of each budget")
    p.add_argument("--calibration", type=positive_int, default=96, help="noises 0..N-1 the grids are fitted on")
    p.add_argument("--heldout", type=positive_int, default=96, help="the next N noises, the result is judged on")
    add_search_options(p, popsize=5, generations=12, bound=1.5, polish=60)
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    add_cache_and_out(p, RESULTS / "grid_bound_digits.json", metavar="FILE.json", writes="JSON file path the results are written to (the shipped one is overwritten)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", StabilityWarning)  # diverging trial grids are measured, not warned about
    source = json.loads(Path(args.source).read_text())
    target = StudyTarget.resolve(args.model, cache=args.cache)
    cal = target.study(0, args.calibration)
    held = target.study(args.calibration, args.heldout)
    out = {"config": portable(vars(args)), "by_nfe": {}}
    path = Path(args.out)

    for nfe in args.nfe:
        method = source["by_nfe"][str(nfe)]["method"]

        def save(row, nfe=nfe):
            out["by_nfe"][str(nfe)] = row
            write_json(path, out)

        r = search(cal, held, method, nfe, popsize=args.popsize, generations=args.generations, bound=args.bound,
                   polish=args.polish, seed=args.seed, save=save)
        print(f"NFE {nfe}: {method} in sample {100 * r['calibration_reduction']:.1f}% "
              f"({r['calibration_error']:.4g}), held-out {100 * r['heldout_reduction']:.1f}% "
              f"({r['heldout_error']:.4g}), {r['evaluations']} runs, {r['seconds']:.0f} s", flush=True)
    return out


if __name__ == "__main__":
    main()
