"""Fitted solvers on the digits UNet: iPNDM's grid and per-step weights fitted on the network, judged on held-out noises.

For each NFE the fit (:func:`pndmkit.studies.solver_opt.optimize_solver`) starts from the grid that
``analysis/unet_free_grid.py`` searched for ``unipc-3`` at that NFE (its best calibration error at NFE 5-6; a
grid is a start for any method) or, at NFE 8 and 10, where that search did not run, the ``unipc-2`` grid that
``analysis/grid_opt.py`` optimised on the network (``grid_opt_digits.json``, the best method there), or at NFE
15-50, where neither ran, the built-in grid kind of the best pndmkit run of ``compare_digits_160``; it refines
that grid for iPNDM in a few runs (``--grid-maxfev``), then fits the grid and a weight table together by least
squares on calibration noises 0-95 (converged references of ``analysis/results/real_cache``; its own held-out set,
for its fallback rule, is noises 96-127). The fitted solver is judged on noises 128-287 against the best peer and
the best pndmkit run of ``analysis/compare_digits_160`` (their per-noise errors read from its ``compare.json``),
each ratio with its 95% paired bootstrap interval, as ``analysis/unet_free_grid.py`` judges its grids.

``--base ipndm-x0`` builds the fit on iPNDM's data-prediction form instead
(:data:`pndmkit.studies.solver_opt.BASE_METHODS`): ``ipndm-x0``'s grid is refined, the table weighs past ``x0``
predictions through the data-prediction transfer, and the held-out rows are ``ipndm-x0_on_grid`` (``ipndm-x0`` on
its searched grid) and the fitted solver on that base.

Run: ``python -m analysis.unet_fitted [--nfe 5 6] [--maxfev 300] [--grid-maxfev 20] [--base ipndm]
[--out analysis/results/compare_digits_160/fitted]`` (writes ``.json`` and ``.md``); one run of the weight search
costs the network 96 noises x NFE evaluations (about 3 s here), a Jacobian ``4 NFE`` runs.
"""

from __future__ import annotations

import argparse
import sys
import json
import time
import warnings

from pathlib import Path

import numpy as np

from analysis.compare_digits_leading_multistep import Runner, judged, ratio_text, shipped_rows, write_report
from analysis.tables import RESULTS, add_cache_and_out

FREE_GRID = RESULTS / "compare_digits_160" / "free_grid.json"
GRID_OPT = RESULTS / "grid_opt_digits.json"

#: the method whose searched grid each fit starts from (free_grid.json), and where that has no row (grid_opt_digits.json)
START_METHOD, START_METHOD_OPT = "unipc-3", "unipc-2"


def start_grids(shipped: dict) -> dict:
    """NFE -> what each fit starts from: ``free_grid.json``'s ``unipc-3`` grid, else ``grid_opt_digits.json``'s
    ``unipc-2`` grid optimised directly on the network (both searched on calibration noises 0-95), else (NFE 15-50,
    where neither search ran) the built-in grid kind of the best pndmkit run of ``compare_digits_160`` at that NFE
    (``shipped``: :func:`~analysis.compare_digits_leading_multistep.shipped_rows`)."""
    starts = {nfe: best["pndmkit"]["option"] for nfe, best in shipped.items()}
    starts.update({int(n): r["direct"]["grid"] for n, r in json.loads(GRID_OPT.read_text())["by_nfe"].items()
                   if r["method"] == START_METHOD_OPT})
    starts.update({r["nfe"]: r["grid"] for r in json.loads(FREE_GRID.read_text())["rows"]
                   if r["method"] == START_METHOD})
    return starts


def main(argv=None) -> int:
    from pndmkit.commands.args import positive_int
    from pndmkit.studies.solver_opt import BASE_METHOD, BASE_METHODS, SolverFallbackWarning, fitted_integrator, \
        optimize_solver

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nfe", type=positive_int, nargs="+", default=[5, 6], help="NFE budgets (default 5 6)")
    p.add_argument("--maxfev", type=positive_int, default=300, help="weight-search runs per NFE (default 300)")
    p.add_argument("--grid-maxfev", type=positive_int, default=20,
                   help="runs of the base method's grid search from the start grid (default 20)")
    p.add_argument("--base", choices=BASE_METHODS, default=BASE_METHOD,
                   help=f"the method the solver is built on (default {BASE_METHOD}; ipndm-x0: the table weighs past "
                        "x0 predictions through the data-prediction transfer): its grid is searched, its weights "
                        "start the table, and it is the first held-out row")
    p.add_argument("--continue-from", type=Path, metavar="PATH.json", default=None,
                   help="continue the fits of an earlier run's PATH.json (its grid and weights per NFE, the grid "
                        "search skipped); the report counts the runs of both")
    add_cache_and_out(p, RESULTS / "compare_digits_160" / "fitted", metavar="PATH",
                      writes="PATH.json and PATH.md are written")
    args = p.parse_args(argv)
    tic = time.perf_counter()
    config, shipped = shipped_rows()
    starts = start_grids(shipped)
    missing = [n for n in args.nfe if n not in shipped]  # every NFE with a row has a start (start_grids)
    if missing:
        p.error(f"--nfe {missing[0]}: no row in compare_digits_160 to judge it against "
                f"(NFE {sorted(shipped)} have one)")
    earlier = {}
    if args.continue_from is not None:
        try:
            earlier = {r["nfe"]: r for r in json.loads(args.continue_from.read_text())["rows"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            p.error(f"--continue-from {args.continue_from}: not a report of this script ({exc})")
        missing = [n for n in args.nfe if n not in earlier]
        if missing:
            p.error(f"--continue-from {args.continue_from}: no row for --nfe {missing[0]} (it has {sorted(earlier)})")
        # reports written before --base have no base: their fits were iPNDM's
        other = sorted({r.get("base", BASE_METHOD) for n, r in earlier.items() if n in args.nfe} - {args.base})
        if other:
            p.error(f"--continue-from {args.continue_from}: its fits are built on {other[0]}, not --base "
                    f"{args.base}; give --base {other[0]} or start afresh")
    held = Runner(config["first"], config["n"], args.cache, config["seed"])
    rows = []
    for nfe in args.nfe:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SolverFallbackWarning)  # judged below, on noises 128-287
            before = earlier.get(nfe)
            res = optimize_solver("digits", nfe, calibration=96, heldout=32, cache=args.cache,
                                  start=before["grid"] if before else starts[nfe],
                                  start_weights=before["weights"] if before else None,
                                  grid_maxfev=1 if before else args.grid_maxfev, maxfev=args.maxfev, fallback=False,
                                  base=args.base)
        seconds = time.perf_counter() - t
        best = shipped[nfe]
        grid_start = before["grid_search"] if before else res.grid_result.grid
        on_grid = f"{args.base}_on_grid"  # the base method on its searched grid
        errors = {on_grid: held.errors(args.base, grid_start),
                  "fitted_solver": held.errors(fitted_integrator(res.weights, held.schedule, base=args.base),
                                               res.grid)}
        row = {"nfe": nfe, "base": args.base, "start_grid": starts[nfe], "grid_search": [float(v) for v in grid_start],
               "grid": [float(v) for v in res.grid], "weights": [list(w) for w in res.weights],
               "grid_evaluations": res.grid_result.evaluations + (before["grid_evaluations"] if before else 0),
               "evaluations": res.evaluations + (before["evaluations"] if before else 0),
               "seconds": seconds + (before["seconds"] if before else 0.0),
               "continued_from": str(args.continue_from) if before else None,
               "calibration_error_grid": before["calibration_error_grid"] if before else
               res.grid_result.calibration_error,
               "calibration_error": res.calibration_error, "heldout_96_127": res.heldout_error,
               "best_peer": f"{best['peer']['method']}, {best['peer']['option']}",
               "best_pndmkit": f"{best['pndmkit']['method']}, {best['pndmkit']['option']}"}
        row.update(judged(errors, best))
        rows.append(row)
        print(f"NFE {nfe}: calibration {res.grid_result.calibration_error:.4g} (grid) -> {res.calibration_error:.4g} "
              f"(fitted; {res.grid_result.evaluations} + {res.evaluations} runs, {seconds:.0f} s); noises 128-287 / "
              f"best peer: grid {row[on_grid]['to_peer']['ratio']:.3f}, fitted "
              f"{row['fitted_solver']['to_peer']['ratio']:.3f} {np.round(row['fitted_solver']['to_peer']['interval'], 3)}", flush=True)
    report = {"command": " ".join(["python -m analysis.unet_fitted", *(sys.argv[1:] if argv is None else argv)]),
              "seconds": time.perf_counter() - tic, "base": args.base, "rows": rows}
    write_report(args.out, report, markdown)
    return 0


def markdown(report: dict) -> str:
    iv = ratio_text
    base = report.get("base", "ipndm")  # reports written before --base: iPNDM's
    on_grid = f"{base}_on_grid"
    whose = "iPNDM" if base == "ipndm" else f"{base} (weights on past x0 predictions, data-prediction transfer)"
    lines = ["# Fitted solvers on the digits UNet", "",
             f"Command: `{report['command'].strip()}` ({report['seconds']:.0f} s wall on the shared 2-core machine).",
             "",
             f"{on_grid}: {whose} on its grid searched from the unipc-3 grid of `free_grid.md` (NFE 5-6) or the "
             "unipc-2 grid of `grid_opt_digits.json` (NFE 8-10) on calibration noises 0-95; "
             f"fitted_solver: that grid and {'iPNDM' if base == 'ipndm' else base}'s per-step weights fitted "
             "together on the same noises (`pndmkit.studies.solver_opt.optimize_solver`"
             + ("" if base == "ipndm" else f", base {base}") + "). Errors on noises 128-287 (seed 0), RMS over "
             "noises and pixels at `abar = 1` against the converged reference; ratios to the best peer and the best "
             "pndmkit run of `compare_digits_160`, with 95% paired bootstrap intervals.", "",
             "| NFE | solver | calibration error | held-out error | / best peer | / best pndmkit | runs |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        for name, cal, runs in ((on_grid, r["calibration_error_grid"], r["grid_evaluations"]),
                                ("fitted_solver", r["calibration_error"], r["evaluations"])):
            lines.append(f"| {r['nfe']} | {name} | {cal:.4e} | {r[name]['error']:.4e} | {iv(r[name]['to_peer'])} | "
                         f"{iv(r[name]['to_pndmkit'])} | {runs} |")
    lines += ["", "Best peer / best pndmkit of `compare_digits_160` per NFE: "
              + "; ".join(f"NFE {r['nfe']}: {r['best_peer']} / {r['best_pndmkit']}" for r in report["rows"])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
