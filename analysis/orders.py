"""Convergence orders of every registered method: end-point error against the exact PF-ODE trajectory.

Uses :mod:`pndmkit.studies.convergence` (the engine of ``pndmkit order``: its default study, 2-D mixture, linear
VP, ``t``-uniform grid ending at ``s = 0.1``) when it is importable; otherwise a small local loop with the
same output: on the built-in 1-D mixture ``gmm1d`` with the continuous linear VP schedule and a
``t``-uniform grid, ``n`` draws of ``N(0, 1)`` at ``t = 1`` are integrated to ``t = 1e-3``; the error is the
largest absolute deviation from the reference solution (DOP853 at 1e-12). The measured order is the
least-squares slope of ``-log error`` against ``log steps`` over the last three step counts whose error is
above 1e-11 (below that, round-off). The adaptive ``pf`` is reported per NFE only, over a range of tolerances.

Output JSON (the shape of ``pndmkit order --json``): ``{"problem", "schedule", "grid", "source",
"methods": {name: {"declared_order", "measured_order", "steps", "nfe", "errors"}}}``.

Run: ``python -m analysis.orders [--quick] [--out FILE]`` (default analysis/results/orders.json).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from analysis._tables import Log, stderr_log, study_main, write_json

SIZES = {
    False: {"steps": [10, 20, 40, 80, 160, 320, 640], "n": 16, "rtols": [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]},
    True: {"steps": [10, 20, 40, 80], "n": 4, "rtols": [1e-3, 1e-5]},
}
ROUND_OFF = 1e-11


def fit_order(steps: list[int], errors: list[float], k: int = 3) -> float:
    """Slope of -log(error) vs log(steps) on the last ``k`` points above round-off."""
    pts = [(s, e) for s, e in zip(steps, errors) if math.isfinite(e) and e > ROUND_OFF]
    if len(pts) < 2:
        return math.nan
    x, y = np.log(np.array(pts[-k:], dtype=float)).T
    return float(-np.polyfit(x, y, 1)[0])


def local_study(quick: bool, log: Log) -> dict[str, Any]:
    """The local loop described in the module docstring."""
    import pndmkit
    from pndmkit.adaptive import AdaptiveIntegrator
    from pndmkit.problems import get_problem
    from pndmkit.schedules import LinearVP

    size = SIZES[quick]
    problem, schedule = get_problem("gmm1d"), LinearVP()
    x_T = np.random.default_rng(0).standard_normal((size["n"], 1))
    ref = problem.reference(x_T, schedule)

    def model(x: np.ndarray, t: float) -> np.ndarray:
        return problem.eps(x, t, schedule)

    out: dict[str, Any] = {}
    for name, spec in pndmkit.METHODS.items():
        runs = []
        if spec.adaptive:
            for rtol in size["rtols"]:
                sol = AdaptiveIntegrator(schedule, rtol=rtol, atol=rtol).solve(model, x_T, [schedule.t_start,
                                                                                               schedule.t_end])
                runs.append((None, sol.nfe, float(np.max(np.abs(sol.x - ref)))))
        else:
            for steps in size["steps"]:
                with np.errstate(all="ignore"):
                    sol = pndmkit.sample(model, x_T, schedule=schedule, method=name, steps=steps, grid="uniform")
                err = float(np.max(np.abs(sol.x - ref)))
                runs.append((steps, sol.nfe, err if math.isfinite(err) else math.nan))
        steps_l, nfe_l, err_l = (list(v) for v in zip(*runs))
        measured = math.nan if spec.adaptive else fit_order(steps_l, err_l)
        out[name] = {"declared_order": spec.order, "measured_order": measured, "steps": steps_l, "nfe": nfe_l,
                     "errors": err_l}
        log(f"    {name:9s} declared {spec.order}  measured {measured:.2f}")
    return {"problem": "gmm1d", "schedule": "linear-vp", "grid": "uniform", "source": "analysis.orders (local loop)",
            "methods": out}


def library_study(quick: bool, log: Log) -> dict[str, Any] | None:
    """The study through :mod:`pndmkit.studies.convergence` (``pndmkit order``'s engine), or None if it is absent."""
    try:
        from pndmkit.studies.convergence import DEFAULT_STEPS, make_study, run_study
    except ImportError:
        return None
    study = make_study("gmm2d", "linear-vp", batch=4 if quick else 8)
    steps = SIZES[True]["steps"] if quick else list(DEFAULT_STEPS)
    results = run_study(study, steps=steps, progress=None)
    for name, res in results.items():
        order = res.measured_order
        log(f"    {name:9s} declared {res.declared_order}  measured {order if order is None else round(order, 2)}")
    return {"problem": study.problem_name, "schedule": study.schedule_name, "grid": study.grid,
            "t_start": study.t_start, "t_end": study.t_end, "source": "pndmkit.studies.convergence",
            "methods": {name: res.to_dict() for name, res in results.items()}}


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    return write_json(path, library_study(quick, log) or local_study(quick, log))


main = study_main(run, "orders.json", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
