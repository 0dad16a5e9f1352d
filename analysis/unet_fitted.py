"""Fitted solvers on the digits UNet: iPNDM's grid and per-step weights fitted on the network, judged on held-out noises.

For each NFE the fit (:func:`pndmkit.studies.solver_opt.optimize_solver`) starts from the grid that
``analysis/unet_free_grid.py`` searched for ``unipc-3`` at that NFE (its best calibration error at NFE 5-6; a
grid is a start for any method), refines that grid for iPNDM in a few runs (``--grid-maxfev``), then fits the grid
and a weight table together by least squares on calibration noises 0-95 (converged references of
``analysis/results/real_cache``; its own held-out set, for its fallback rule, is noises 96-127). The fitted solver is
judged on noises 128-287 against the best peer and the best pndmkit run of ``analysis/compare_digits_160`` (their
per-noise errors read from its ``compare.json``), each ratio with its 95% paired bootstrap interval, as
``analysis/unet_free_grid.py`` judges its grids.

Run: ``python -m analysis.unet_fitted [--nfe 5 6] [--maxfev 300] [--grid-maxfev 20]
[--out analysis/results/compare_digits_160/fitted]`` (writes ``.json`` and ``.md``); one run of the weight search
costs the network 96 noises x NFE evaluations (about 3 s here), a Jacobian ``4 NFE`` runs.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from analysis.compare_digits_leading_multistep import Runner, judged, ratio_text, shipped_rows, write_report
from analysis.tables import RESULTS, add_cache_and_out

FREE_GRID = RESULTS / "compare_digits_160" / "free_grid.json"

#: the method whose searched grid each fit starts from
START_METHOD = "unipc-3"


def main(argv=None) -> int:
    from pndmkit.commands.args import positive_int
    from pndmkit.studies.solver_opt import SolverFallbackWarning, fitted_integrator, optimize_solver

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nfe", type=positive_int, nargs="+", default=[5, 6], help="NFE budgets (default 5 6)")
    p.add_argument("--maxfev", type=positive_int, default=300, help="weight-search runs per NFE (default 300)")
    p.add_argument("--grid-maxfev", type=positive_int, default=20,
                   help="runs of iPNDM's grid search from the start grid (default 20)")
    add_cache_and_out(p, RESULTS / "compare_digits_160" / "fitted", metavar="PATH",
                      writes="PATH.json and PATH.md are written")
    args = p.parse_args(argv)
    tic = time.perf_counter()
    config, shipped = shipped_rows()
    starts = {r["nfe"]: r["grid"] for r in json.loads(FREE_GRID.read_text())["rows"] if r["method"] == START_METHOD}
    missing = [n for n in args.nfe if n not in starts or n not in shipped]
    if missing:
        p.error(f"--nfe {missing[0]}: no {START_METHOD} grid in {FREE_GRID.relative_to(RESULTS.parent.parent)} or no "
                f"row in compare_digits_160 "
                f"(NFE {sorted(set(starts) & set(shipped))} have both)")
    held = Runner(config["first"], config["n"], args.cache, config["seed"])
    rows = []
    for nfe in args.nfe:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SolverFallbackWarning)  # judged below, on noises 128-287
            res = optimize_solver("digits", nfe, calibration=96, heldout=32, cache=args.cache, start=starts[nfe],
                                  grid_maxfev=args.grid_maxfev, maxfev=args.maxfev, fallback=False)
        seconds = time.perf_counter() - t
        best = shipped[nfe]
        errors = {"grid": held.errors("ipndm", res.grid_result.grid),
                  "fitted": held.errors(fitted_integrator(res.weights, held.schedule), res.grid)}
        row = {"nfe": nfe, "start_grid": starts[nfe], "grid_search": [float(v) for v in res.grid_result.grid],
               "grid": [float(v) for v in res.grid], "weights": [list(w) for w in res.weights],
               "grid_evaluations": res.grid_result.evaluations, "evaluations": res.evaluations, "seconds": seconds,
               "calibration_error_grid": res.grid_result.calibration_error,
               "calibration_error": res.calibration_error, "heldout_96_127": res.heldout_error,
               "best_peer": f"{best['peer']['method']}, {best['peer']['option']}",
               "best_pndmkit": f"{best['pndmkit']['method']}, {best['pndmkit']['option']}"}
        row.update(judged(errors, best))
        rows.append(row)
        print(f"NFE {nfe}: calibration {res.grid_result.calibration_error:.4g} (grid) -> {res.calibration_error:.4g} "
              f"(fitted; {res.grid_result.evaluations} + {res.evaluations} runs, {seconds:.0f} s); noises 128-287 / "
              f"best peer: grid {row['grid']['to_peer']['ratio']:.3f}, fitted {row['fitted']['to_peer']['ratio']:.3f} "
              f"{np.round(row['fitted']['to_peer']['interval'], 3)}", flush=True)
    report = {"command": "python -m analysis.unet_fitted " + " ".join(argv if argv is not None else []),
              "seconds": time.perf_counter() - tic, "rows": rows}
    write_report(args.out, report, markdown)
    return 0


def markdown(report: dict) -> str:
    iv = ratio_text
    lines = ["# Fitted solvers on the digits UNet", "",
             f"Command: `{report['command'].strip()}` ({report['seconds']:.0f} s wall on the shared 2-core machine).",
             "",
             "grid: iPNDM on its grid searched from the unipc-3 grid of `free_grid.md` on calibration noises 0-95; "
             "fitted: that grid and iPNDM's per-step weights fitted together on the same noises "
             "(`pndmkit.studies.solver_opt.optimize_solver`). Errors on noises 128-287 (seed 0), RMS over noises and "
             "pixels at `abar = 1` against the converged reference; ratios to the best peer and the best pndmkit run "
             "of `compare_digits_160`, with 95% paired bootstrap intervals.", "",
             "| NFE | solver | calibration error | held-out error | / best peer | / best pndmkit | runs |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['nfe']} | grid | {r['calibration_error_grid']:.4e} | {r['grid']['error']:.4e} | "
                     f"{iv(r['grid']['to_peer'])} | {iv(r['grid']['to_pndmkit'])} | {r['grid_evaluations']} |")
        lines.append(f"| {r['nfe']} | fitted | {r['calibration_error']:.4e} | {r['fitted']['error']:.4e} | "
                     f"{iv(r['fitted']['to_peer'])} | {iv(r['fitted']['to_pndmkit'])} | {r['evaluations']} |")
    lines += ["", "Best peer / best pndmkit of `compare_digits_160` per NFE: "
              + "; ".join(f"NFE {r['nfe']}: {r['best_peer']} / {r['best_pndmkit']}" for r in report["rows"])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
