"""Does searching the first time ever end worse than keeping it? ``optimize`` with ``first_time="free"`` against
``"fixed"`` on a small panel.

For each method (:data:`METHODS`), NFE (:data:`NFES`), problem (:data:`PROBLEMS`) and schedule
(:data:`SCHEDULES`), :func:`pndmkit.studies.grid_opt.optimize` runs twice with its other defaults (degree 3, its
default ``maxfev``) on the same :data:`NOISES` calibration and held-out noises (seed 0), ``fallback=False`` so
that the searched grids themselves are compared: once with the first time searched (``"free"``, the default) and
once kept at the noise's time (``"fixed"``). The free family holds every grid of the fixed one, so a free search
whose *calibration* error ends above the fixed search's is a search that got stuck, not a smaller family.

Each row records, per mode, the calibration and held-out errors, the first time, the shortest step, the runs and
the seconds; the summary counts the rows where free ends worse than fixed (on calibration and held out) and the
geometric mean of free / fixed held-out errors. Every number is deterministic except ``seconds``.

Run: ``python -m analysis.grid_opt_first_time [--out analysis/results/grid_opt_first_time.json]`` (writes the
``.md`` table beside it; about 1 CPU-minute).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pndmkit.problems.builtin import gmm32d
from pndmkit.schedules import get_schedule
from pndmkit.stability import StabilityWarning
from pndmkit.studies import grid_opt
from analysis import portable
from analysis.tables import RESULTS, write_json

METHODS = ("ipndm", "unipc-2", "unipc-3", "dpm-solver++-3m")
NFES = (5, 6, 8)
#: problem label -> factory (a name optimize resolves, or a mixture)
PROBLEMS = {"gmm2d": lambda: "gmm2d", "gmm32d(dim=8, n_components=4)": lambda: gmm32d(dim=8, n_components=4)}
#: schedule names of :func:`pndmkit.schedules.get_schedule`: a problem's default, ``DiscreteVP.linear()``
#: (``ddpm-linear``, times 999 to -1), and EDM (``sigma`` 80 to 0)
SCHEDULES = ("ddpm-linear", "edm")
#: calibration and held-out noises of every run
NOISES = (128, 128)


def one(method: str, problem: Any, nfe: int, schedule: str, first_time: str) -> dict[str, Any]:
    """One optimisation and the numbers the table needs."""
    tic = time.perf_counter()
    res = grid_opt.optimize(method, problem, nfe, schedule=get_schedule(schedule), calibration=NOISES[0],
                            heldout=NOISES[1], fallback=False, first_time=first_time)
    seconds = time.perf_counter() - tic
    g = res.searched_grid
    out = {"calibration_error": res.calibration_error, "heldout_error": res.heldout_error,
           "baseline_error": res.baseline_error, "baseline_kind": res.baseline_kind,
           "first": float(g[0]), "t_start": res.t_start, "shortest_step": float(np.min(-np.diff(g))),
           "evaluations": res.evaluations, "seconds": seconds, "grid": g.tolist()}
    for name in ("first_time_won", "fixed_calibration_error", "fixed_evaluations"):  # present once the fix is in
        if hasattr(res, name):
            value = getattr(res, name)
            out[name] = None if isinstance(value, float) and math.isnan(value) else value
    return out


def markdown(out: dict[str, Any]) -> str:
    s = out["summary"]
    lines = [f"# First time free vs fixed ({out['noises'][0]} calibration / {out['noises'][1]} held-out noises)", "",
             f"{s['rows']} cases; free ends worse than fixed on calibration in {s['free_worse_calibration']}, held "
             f"out in {s['free_worse_heldout']} (by more than 5%: {s['free_worse_heldout_5pct']}); geometric mean of "
             f"free / fixed held-out error {s['geomean_heldout_ratio']:.3f}; runs: free {s['free_evaluations']}, "
             f"fixed {s['fixed_evaluations']}; seconds: free {s['free_seconds']:.0f}, fixed "
             f"{s['fixed_seconds']:.0f}.", "",
             "| schedule | problem | method | NFE | fixed cal | free cal | fixed held-out | free held-out | free/fixed "
             "| free first time | t_start | fixed runs | free runs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        fx, fr = r["fixed"], r["free"]
        flag = " **worse**" if fr["calibration_error"] > fx["calibration_error"] else ""
        lines.append(f"| {r['schedule']} | {r['problem']} | {r['method']} | {r['nfe']} | "
                     f"{fx['calibration_error']:.3e} | {fr['calibration_error']:.3e}{flag} | {fx['heldout_error']:.3e} "
                     f"| {fr['heldout_error']:.3e} | {fr['heldout_error'] / fx['heldout_error']:.3f} | "
                     f"{fr['first']:.5g} | {fr['t_start']:g} | {fx['evaluations']} | {fr['evaluations']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m analysis.grid_opt_first_time", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(RESULTS / "grid_opt_first_time.json"), metavar="FILE.json",
                   help="JSON file path the results are written to, the table beside it with the suffix .md "
                        "(default: analysis/results/grid_opt_first_time.json, the shipped one, overwritten)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", StabilityWarning)  # trial and built-in grids are measured, not recommended
    tic, cpu = time.perf_counter(), time.process_time()
    rows = []
    for schedule in SCHEDULES:
        for label, make in PROBLEMS.items():
            for method in METHODS:
                for nfe in NFES:
                    r = {"schedule": schedule, "problem": label, "method": method, "nfe": nfe}
                    for mode in ("fixed", "free"):
                        r[mode] = one(method, make(), nfe, schedule, mode)
                    rows.append(r)
                    print(f"{schedule} {label} {method} NFE {nfe}: held-out fixed {r['fixed']['heldout_error']:.3e} "
                          f"free {r['free']['heldout_error']:.3e} (cal {r['fixed']['calibration_error']:.3e} / "
                          f"{r['free']['calibration_error']:.3e})", flush=True)
    ratios = [r["free"]["heldout_error"] / r["fixed"]["heldout_error"] for r in rows]
    summary = {"rows": len(rows),
               "free_worse_calibration": sum(r["free"]["calibration_error"] > r["fixed"]["calibration_error"]
                                             for r in rows),
               "free_worse_heldout": sum(x > 1 for x in ratios),
               "free_worse_heldout_5pct": sum(x > 1.05 for x in ratios),
               "geomean_heldout_ratio": float(np.exp(np.mean(np.log(ratios)))),
               "free_evaluations": sum(r["free"]["evaluations"] for r in rows),
               "fixed_evaluations": sum(r["fixed"]["evaluations"] for r in rows),
               "free_seconds": sum(r["free"]["seconds"] for r in rows),
               "fixed_seconds": sum(r["fixed"]["seconds"] for r in rows)}
    out = {"noises": list(NOISES), "noise_seed": 0, "config": portable(vars(args)), "summary": summary,
           "rows": rows, "seconds": time.perf_counter() - tic, "cpu_seconds": time.process_time() - cpu}
    path = Path(args.out)
    write_json(path, out)
    path.with_suffix(".md").write_text(markdown(out))
    print({k: v for k, v in summary.items()}, flush=True)
    return out


if __name__ == "__main__":
    main()
