"""Grids with a searched first time on the digits UNet: does ``optimize(first_time="free")`` carry the lead further?

``analysis/compare_digits_leading_multistep.py`` (part 2) tuned two numbers of a grid on the digits UNet, the first
and the last step start of an equal spacing, on calibration noises 0-95, and reached 0.94 (NFE 5) and 0.92 (NFE
6) of the best peer's error on the 160 held-out noises of ``analysis/compare_digits_160``. Those grids start
below ``t = 999`` (800 and 900), with the noise taken as the state there. :func:`pndmkit.studies.grid_opt.optimize`
can now refine such a grid: with ``first_time="free"`` (its default) a start grid may begin below the noise's
time, and the search moves its step lengths (Legendre degree 3) and its first time. For each (method, NFE) of that
scan this study starts the search from the scan's chosen grid, on the same calibration noises 0-95 (converged
references of ``analysis/results/real_cache``; the search's own held-out set is noises 96-127), and judges the
searched grid on noises 128-287 against the best peer and the best pndmkit run of ``compare_digits_160`` (their
per-noise errors read from its ``compare.json``), each ratio with its 95% paired bootstrap interval.

Run: ``python -m analysis.unet_free_grid [--maxfev 120] [--out analysis/results/compare_digits_160/free_grid]``
(writes ``.json`` and ``.md``); one search run costs the network 96 noises x NFE evaluations (about 3 s here).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from analysis.compare_digits_leading_multistep import Runner, judged, ratio_text, shipped_rows, write_report
from analysis.tables import RESULTS, add_cache_and_out

SCAN = RESULTS / "compare_digits_160" / "leading_multistep.json"


def main(argv=None) -> int:
    from pndmkit.commands.args import positive_int
    from pndmkit.studies.compare import compare_spec
    from pndmkit.studies.grid_opt import optimize

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--maxfev", type=positive_int, default=120, help="search runs per (method, NFE) (default 120)")
    add_cache_and_out(p, RESULTS / "compare_digits_160" / "free_grid", metavar="PATH", writes="PATH.json and PATH.md are written")
    args = p.parse_args(argv)
    tic = time.perf_counter()
    config, shipped = shipped_rows()
    scan = json.loads(SCAN.read_text())
    held = Runner(config["first"], config["n"], args.cache, config["seed"])
    rows = []
    for s in scan["scan"]:
        method, nfe, start = s["method"], s["nfe"], s["grid"]
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # trial grids' stability warnings; the result is judged below
            res = optimize(compare_spec(method), "digits", nfe, calibration=96, heldout=32, cache=args.cache,
                           start=start, maxfev=args.maxfev, fallback=False)
        seconds = time.perf_counter() - t
        best = shipped[nfe]
        errors = {"scan": held.errors(method, start), "searched": held.errors(method, res.grid)}
        row = {"method": method, "nfe": nfe, "start_grid": start, "grid": [float(v) for v in res.grid],
               "evaluations": res.evaluations, "seconds": seconds,
               "calibration_error_start": s["calibration_error"], "calibration_error": res.calibration_error}
        row.update(judged(errors, best))
        rows.append(row)
        print(f"{method} NFE {nfe}: calibration {s['calibration_error']:.4g} -> {res.calibration_error:.4g} "
              f"({res.evaluations} runs, {seconds:.0f} s), held-out / best peer "
              f"{row['scan']['to_peer']['ratio']:.3f} -> {row['searched']['to_peer']['ratio']:.3f} "
              f"{np.round(row['searched']['to_peer']['interval'], 3)}, grid {np.round(res.grid, 1)}", flush=True)
    report = {"command": "python -m analysis.unet_free_grid"
                         + (f" --maxfev {args.maxfev}" if args.maxfev != p.get_default("maxfev") else "")
                         + (f" --out {args.out}" if args.out != p.get_default("out") else ""),
              "seconds": time.perf_counter() - tic, "rows": rows}
    write_report(args.out, report, markdown)
    return 0


def markdown(report: dict) -> str:
    iv = ratio_text
    lines = ["# Grids with a searched first time on the digits UNet", "",
             f"Command: `{report['command']}` ({report['seconds']:.0f} s wall on the shared 2-core machine).", "",
             "Start: the grid the start scan of `leading_multistep.md` chose on calibration noises 0-95; searched: "
             "`grid_opt.optimize(first_time='free')` from it on the same noises. Errors on noises 128-287 (seed 0), "
             "RMS over noises and pixels at `abar = 1` against the converged reference; ratios to the best peer and "
             "the best pndmkit run of `compare_digits_160`, with 95% paired bootstrap intervals.", "",
             "| NFE | method | grid | calibration error | held-out error | / best peer | / best pndmkit |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for r in report["rows"]:
        for name, cal in (("scan", r["calibration_error_start"]), ("searched", r["calibration_error"])):
            grid = r["start_grid"] if name == "scan" else r["grid"]
            lines.append(f"| {r['nfe']} | {r['method']} | {name}: {' '.join(f'{v:.0f}' for v in grid)} | {cal:.4e} | "
                         f"{r[name]['error']:.4e} | {iv(r[name]['to_peer'])} | {iv(r[name]['to_pndmkit'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
