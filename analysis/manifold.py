"""The manifold argument (PNDM sec. 3): classical steps leave the region where ``p_t`` concentrates.

On the built-in 2-D mixture ``gmm2d`` with the discrete DDPM linear schedule (DDIM's convention), ``n`` draws of
``N(0, I)`` are integrated in few steps by classical methods (``euler``, ``fon``: a linear step
``x + h f(x, t)`` on the ODE in ``t``) and by pseudo methods (``ddim``, ``f-pndm``: the transfer ``phi``), and
by the exact probability-flow map (``exact``, the reference solver at the same grid times). Recorded at every
grid time, through the sampler's ``callback(t, x, e)``: the points, the mean and spread of ``||x_t|| / sqrt(d)``
against its exact root-mean-square under ``p_t``, and the mean of ``log p_t(x_t)`` under the exact marginal.

The same runs on the 32-D mixture ``gmm32d`` and, when it is shipped, on the digits model (d = 256), where the
exact RMS is ``sqrt(abar E||x_0||^2 / d + 1 - abar)`` from the data's second moment: norm concentration, and so
the manifold argument, is a high-dimensional effect.

Output JSON: ``{"schedule", "steps", "cases": {"gmm2d" | "gmm32d" | "digits": {"dim", "times", "expected_norm",
"exact_logp" (mixtures), "methods": {name: {"kind", "norm_rms", "norm_q10", "norm_q90", "logp_mean" (mixtures),
"points" (gmm2d only: times x n_plot x 2)}}}}}``.

Run: ``python -m analysis.manifold [--quick] [--out FILE]`` (default analysis/results/manifold.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.tables import Log, stderr_log, study_main, write_json

CLASSICAL = ["euler", "fon"]
PSEUDO = ["ddim", "f-pndm"]
SIZES = {False: {"steps": 10, "n": 1000, "n_high": 200, "n_plot": 200, "n_digits": 64},
         True: {"steps": 6, "n": 200, "n_high": 50, "n_plot": 50, "n_digits": 8}}


def norm_stats(points: list[np.ndarray]) -> dict[str, list[float]]:
    """RMS and 10/90 % quantiles of ``||x|| / sqrt(d)`` at every recorded time (non-finite samples dropped)."""
    rms, q10, q90 = [], [], []
    for x in points:
        flat = x.reshape(len(x), -1)
        norm = np.linalg.norm(flat, axis=1) / np.sqrt(flat.shape[1])
        norm = norm[np.isfinite(norm)]
        ok = norm.size > 0
        rms.append(float(np.sqrt(np.mean(norm**2))) if ok else np.nan)
        q10.append(float(np.quantile(norm, 0.1)) if ok else np.nan)
        q90.append(float(np.quantile(norm, 0.9)) if ok else np.nan)
    return {"norm_rms": rms, "norm_q10": q10, "norm_q90": q90}


def trace(model: Any, x_T: Any, schedule: Any, times: np.ndarray, method: str) -> list[np.ndarray]:
    """The states at every grid time (``x_T`` first) of one run, as float64 numpy arrays."""
    import pndmkit

    def numpy(x: Any) -> np.ndarray:
        return x.detach().double().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float64)

    pts = [numpy(x_T)]
    with np.errstate(all="ignore"):
        pndmkit.sample(model, x_T, schedule=schedule, method=method, grid=times,
                       callback=lambda t, x, e: pts.append(numpy(x)))
    return pts


def mixture_case(name: str, size: dict[str, Any], n: int, with_points: bool) -> dict[str, Any]:
    """Every method plus the exact flow on a built-in mixture; log p_t under the exact marginal."""
    from pndmkit.grids import make_grid
    from pndmkit.problems import get_problem
    from pndmkit.schedules import DiscreteVP

    problem, schedule = get_problem(name), DiscreteVP.linear()
    times = make_grid(schedule, size["steps"], "leading")
    x_T = np.random.default_rng(1).standard_normal((n, problem.dim))
    runs = {m: trace(lambda x, t: problem.eps(x, t, schedule), x_T, schedule, times, m) for m in CLASSICAL + PSEUDO}
    runs["exact"] = list(problem.reference(x_T, schedule, float(times[0]), float(times[-1]), times=times))
    case: dict[str, Any] = {
        "dim": problem.dim, "times": times,
        "expected_norm": [problem.expected_norm(float(t), schedule) for t in times],
        "exact_logp": [float(np.mean(problem.log_prob(problem.sample(n, float(t), schedule, rng=2),
                                                      float(t), schedule))) for t in times],
        "methods": {}}
    for method, pts in runs.items():
        logp = [problem.log_prob(x, float(t), schedule) for t, x in zip(times, pts)]
        entry = {"kind": kind(method), **norm_stats(pts),
                 "logp_mean": [float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else np.nan for v in logp]}
        if with_points:
            entry["points"] = np.round(np.stack(pts)[:, :size["n_plot"]], 4)
        case["methods"][method] = entry
    return case


def digits_case(size: dict[str, Any], log: Log) -> dict[str, Any] | None:
    """The same norms on the shipped digits model; the exact RMS follows from the data's second moment."""
    from analysis import shipped_digits

    try:
        digits = shipped_digits.load()
    except shipped_digits.Unavailable as exc:
        log(f"    digits part skipped: {exc}")
        return None
    import torch

    from pndmkit.grids import make_grid
    from pndmkit.nn.data import load_digits_images

    schedule = digits.schedule
    times = make_grid(schedule, size["steps"], "leading")
    m2 = float(load_digits_images()[0].double().pow(2).mean())  # E ||x_0||^2 / d
    abar = np.asarray(schedule.abar(times), dtype=np.float64)
    x_T = shipped_digits.noise(size["n_digits"], seed=0)
    case: dict[str, Any] = {"dim": int(np.prod(shipped_digits.IMAGE_SHAPE)), "times": times,
                            "expected_norm": np.sqrt(abar * m2 + 1.0 - abar), "methods": {},
                            "model": digits.description}
    with torch.inference_mode():
        for method in CLASSICAL + PSEUDO:
            case["methods"][method] = {"kind": kind(method),
                                       **norm_stats(trace(digits.model, x_T, schedule, times, method))}
    return case


def kind(method: str) -> str:
    return "classical" if method in CLASSICAL else "pseudo" if method in PSEUDO else "exact"


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    size = SIZES[quick]
    out: dict[str, Any] = {"schedule": "ddpm-linear (leading, final abar = 1)", "steps": size["steps"], "cases": {
        "gmm2d": mixture_case("gmm2d", size, size["n"], with_points=True),
        "gmm32d": mixture_case("gmm32d", size, size["n_high"], with_points=False)}}
    digits = digits_case(size, log)
    if digits is not None:
        out["cases"]["digits"] = digits
    for name, case in out["cases"].items():
        ends = ", ".join(f"{m} {v['norm_rms'][-1]:.3f}" for m, v in case["methods"].items())
        log(f"    {name}: final RMS ||x||/sqrt(d): {ends} (exact expectation {case['expected_norm'][-1]:.3f})")
    return write_json(path, out, compact=True)


main = study_main(run, "manifold.json", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
