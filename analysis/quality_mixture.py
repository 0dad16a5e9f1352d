"""Sample quality vs steps on Gaussian-mixture ground truth: an analogue of the paper's FID tables, exact distances.

For every method and step count, ``n`` exact draws of ``N(0, I)`` at the start of the grid are integrated to
the data end on a discrete DDPM schedule (linear and cosine, DDIM's convention: leading spacing, final
``abar = 1``) with the exact eps of the built-in mixture; the samples are scored against the true ``p_0`` by

* ``sw``: sliced Wasserstein-2 distance to ``p_0`` (256 projections, 20000 reference draws);
* ``nll``: average negative log-likelihood under ``p_0`` (nats per sample);
* ``err``: RMS distance of the end points to the exact probability-flow end points (the reference solver),
  i.e. the discretisation error alone, free of the finite-sample floor of ``sw`` and ``nll``.

The row ``method = exact`` holds ``sw`` and ``nll`` of exact samples of ``p_0`` (the finite-sample floor).
Step counts whose NFE would exceed 1100 are skipped (PRK-s, 4 evaluations per step, stops at 250 steps).

Run: ``python -m analysis.quality_mixture [--quick] [--out FILE]`` (default analysis/results/quality_mixture.csv).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from analysis.tables import Log, stderr_log, study_main, write_csv

COLUMNS = ["problem", "schedule", "method", "steps", "nfe", "sw", "nll", "err", "n_samples", "seconds"]
METHODS = ["ddim", "fon", "pf", "s-pndm", "f-pndm", "prk-s", "f-pndm-s"]
SIZES = {
    False: {"problem": "gmm32d", "n": 500, "steps": [10, 20, 50, 100, 250, 1000], "methods": METHODS,
            "ref_n": 200, "sw_ref": None, "max_nfe": 1100},
    True: {"problem": "gmm2d", "n": 200, "steps": [5, 10], "methods": METHODS, "ref_n": 20, "sw_ref": 2000, "max_nfe": 1100},
}


def schedules() -> dict[str, object]:
    from pndmkit.schedules import DiscreteVP

    return {"linear": DiscreteVP.linear(), "cosine": DiscreteVP.cosine()}


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    """Compute the table and write it as CSV at ``path``."""
    import pndmkit
    from pndmkit.problems import get_problem, nll, sliced_wasserstein

    size = SIZES[quick]
    problem = get_problem(size["problem"])
    rows = []
    exact = problem.sample(size["n"], rng=12345)
    rows.append({"problem": size["problem"], "schedule": "", "method": "exact", "steps": 0, "nfe": 0,
                 "sw": sliced_wasserstein(problem, exact, n_reference=size["sw_ref"]), "nll": nll(problem, exact), "err": 0.0,
                 "n_samples": size["n"], "seconds": 0.0})
    x_T = np.random.default_rng(0).standard_normal((size["n"], problem.dim))
    for sname, schedule in schedules().items():
        ref_cache: dict[tuple[float, float], np.ndarray] = {}
        for method in size["methods"]:
            nfe_of = pndmkit.METHODS[method].nfe
            for steps in ([size["steps"][0]] if method == "pf" else
                          [n for n in size["steps"] if nfe_of(n) <= size["max_nfe"]]):
                t0 = time.perf_counter()
                with np.errstate(all="ignore"):
                    sol = pndmkit.sample(lambda x, t: problem.eps(x, t, schedule), x_T, schedule=schedule,
                                         method=method, steps=steps, convention="ddim")
                seconds = time.perf_counter() - t0
                x = sol.x
                ok = bool(np.all(np.isfinite(x)))
                times = (float(sol.times[0]), float(sol.times[-1]))
                if times not in ref_cache:  # the exact end points of the first ref_n trajectories
                    ref_cache[times] = problem.reference(x_T[:size["ref_n"]], schedule, *times)
                ref = ref_cache[times]
                err = float(np.sqrt(np.mean((x[:size["ref_n"]] - ref) ** 2))) if ok else math.nan
                rows.append({"problem": size["problem"], "schedule": sname, "method": method,
                             "steps": None if method == "pf" else steps,
                             "nfe": sol.nfe,
                             "sw": sliced_wasserstein(problem, x, n_reference=size["sw_ref"]) if ok else math.nan,
                             "nll": nll(problem, x) if ok else math.nan, "err": err,
                             "n_samples": size["n"], "seconds": seconds})
                log(f"    {sname:6s} {method:8s} {steps:5d} steps nfe {sol.nfe:5d}  sw {rows[-1]['sw']:.4g}  "
                    f"err {err:.3g}  ({seconds:.1f} s)")
    return write_csv(path, rows, COLUMNS)


main = study_main(run, "quality_mixture.csv", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
