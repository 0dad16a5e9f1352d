"""How much eps changes between consecutive steps: the observation that motivates reusing past gradients.

Along DDIM trajectories (one model evaluation per grid time, so the recorded evaluations are exactly
``e_k = eps(x_{t_k}, t_k)``) with ``N`` steps on the discrete DDPM linear schedule (DDIM's convention), for
each step ``k >= 1`` and each sample:

* ``rel_change = ||e_k - e_{k-1}|| / ||e_k||``;
* ``cosine = <e_k, e_{k-1}> / (||e_k|| ||e_{k-1}||)``, and ``cos_gap = 1 - cosine`` computed without
  cancellation as ``||e_k/||e_k|| - e_{k-1}/||e_{k-1}||||^2 / 2`` (it falls to ~1e-11 here, far below what
  ``cosine`` itself can show in a table);

summarised over the samples by the median and the 10 % / 90 % quantiles. Sources: the 32-D mixture ``gmm32d``
with its exact eps, and the shipped digits model when it is available. Small relative change and cosine near
1 over most of the trajectory are why a linear multistep estimate from past eps (PLMS, S-/F-PNDM) is accurate.

Run: ``python -m analysis.gradient_change [--quick] [--out FILE]`` (default analysis/results/gradient_change.csv).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from analysis.tables import Log, stderr_log, study_main, write_csv

COLUMNS = ["source", "steps", "k", "t", "t_prev", "rel_change_median", "rel_change_q10", "rel_change_q90",
           "cosine_median", "cosine_q10", "cosine_q90", "cos_gap_median", "cos_gap_q10", "cos_gap_q90", "n_samples"]
QUANTILES = {"median": 0.5, "q10": 0.1, "q90": 0.9}
SIZES = {False: {"steps": [10, 50], "n": 500, "n_digits": 32}, True: {"steps": [6], "n": 50, "n_digits": 4}}


def recorded_eps(model: Callable[[Any, float], Any], x_T: Any, schedule: Any, steps: int) -> tuple[list, list]:
    """Times and eps values (float64 numpy, flattened per sample) of every model call of a DDIM run."""
    import pndmkit

    times, values = [], []

    def spy(x: Any, t: float) -> Any:
        e = model(x, t)
        arr = e.detach().double().numpy() if hasattr(e, "detach") else np.asarray(e, dtype=np.float64)
        times.append(float(t))
        values.append(arr.reshape(len(arr), -1))
        return e

    pndmkit.sample(spy, x_T, schedule=schedule, method="ddim", steps=steps, convention="ddim")
    return times, values


def change_rows(source: str, steps: int, times: list, values: list) -> list[dict[str, Any]]:
    rows = []
    for k in range(1, len(values)):
        a, b = values[k], values[k - 1]
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        rel = np.linalg.norm(a - b, axis=1) / na
        cos = np.einsum("ij,ij->i", a, b) / (na * nb)
        gap = 0.5 * np.sum((a / na[:, None] - b / nb[:, None]) ** 2, axis=1)  # 1 - cos, no cancellation
        rows.append({"source": source, "steps": steps, "k": k, "t": times[k], "t_prev": times[k - 1],
                     "rel_change_median": float(np.median(rel)), "rel_change_q10": float(np.quantile(rel, 0.1)),
                     "rel_change_q90": float(np.quantile(rel, 0.9)), "cosine_median": float(np.median(cos)),
                     "cosine_q10": float(np.quantile(cos, 0.1)), "cosine_q90": float(np.quantile(cos, 0.9)),
                     **{f"cos_gap_{q}": float(np.quantile(gap, p)) for q, p in QUANTILES.items()},
                     "n_samples": len(a)})
    return rows


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    from analysis import shipped_digits
    from pndmkit.problems import get_problem
    from pndmkit.schedules import DiscreteVP

    size = SIZES[quick]
    problem, schedule = get_problem("gmm32d"), DiscreteVP.linear()
    x_T = np.random.default_rng(3).standard_normal((size["n"], problem.dim))
    rows = []
    for steps in size["steps"]:
        rows += change_rows("gmm32d", steps, *recorded_eps(lambda x, t: problem.eps(x, t, schedule), x_T,
                                                           schedule, steps))
    try:
        digits = shipped_digits.load()
    except shipped_digits.Unavailable as exc:
        log(f"    digits part skipped: {exc}")
    else:
        import torch

        with torch.inference_mode():
            for steps in size["steps"]:
                rows += change_rows("digits", steps, *recorded_eps(digits.model, shipped_digits.noise(size["n_digits"]),
                                                                   digits.schedule, steps))
    for r in rows:
        if r["k"] in (1, r["steps"] - 1):
            log(f"    {r['source']:7s} N={r['steps']:3d} k={r['k']:3d} t={r['t']:6.0f}  rel change "
                f"{r['rel_change_median']:.3f}  cosine {r['cosine_median']:.4f}")
    return write_csv(path, rows, COLUMNS)


main = study_main(run, "gradient_change.csv", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
