"""The paper's headline claim over several noise draws: how far digits-FID of ``n`` samples moves between draws.

PNDM's abstract claims that 50-step PNDM gives *higher* quality than 1000-step DDIM. The main study
(:mod:`analysis.quality_vs_steps`) compares the two on one draw of ``n`` initial noises (seed 0), with a
paired bootstrap of that draw; a bootstrap resamples the ``n`` samples it has, and cannot show how much the
whole value moves when the noises are drawn again (at ``n = 128`` one method's digits-FID has been seen at
30.5 on one draw and 52.0 on another). This study samples the same two configurations from further seeds
(same ``n``, same settings) and records one digits-FID per draw; :func:`summary` combines them with the
main study's seed-0 row into mean and standard deviation per method and of the paired difference.

Default sizes: both sides on seeds 1-4, so 5 draws each with seed 0 (about 6 CPU-minutes with one torch
thread: 1000-step DDIM costs ~70 s a draw, 50-step F-PNDM ~4 s).

Run: ``python -m analysis.claim_draws [--quick] [--out FILE]`` (default analysis/results/claim_draws.csv).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from analysis._tables import Log, read_csv, stderr_log, study_main, write_csv

COLUMNS = ["seed", "method", "steps", "nfe", "fid", "n_samples", "seconds"]
#: seeds sampled here per side of the claim (seed 0 is the main study's draw)
SEEDS: dict[bool, dict[str, list[int]]] = {False: {"pndm": [1, 2, 3, 4], "ddim": [1, 2, 3, 4]},
                                           True: {"pndm": [1, 2], "ddim": [1, 2]}}


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    """Sample both sides of the claim on the further seeds and write one row per draw.

    Rows are written as they come to ``<table>.partial`` and reused by a rerun with the same ``n``.
    Raises ``analysis._digits.Unavailable`` without the model or the feature network.
    """
    from analysis import _digits, quality_vs_steps

    digits = _digits.load()
    fid = _digits.fid_function()
    n = quality_vs_steps.SIZES[quick]["n"]
    pndm, pndm_steps, ddim, ddim_steps = quality_vs_steps.SIZES[quick]["claim"]
    sides = {"pndm": (pndm, pndm_steps), "ddim": (ddim, ddim_steps)}
    partial = path.with_name(path.name + ".partial")
    done = {(r["seed"], r["method"], r["steps"]): r for r in (read_csv(partial) if partial.is_file() else [])
            if r["n_samples"] == n}
    rows = []
    seeds = sorted(set().union(*SEEDS[quick].values()))
    for seed in seeds:  # both sides of a seed before the next seed: an interrupted run leaves paired draws
        for side, (method, steps) in sides.items():
            if seed not in SEEDS[quick][side]:
                continue
            if (seed, method, steps) in done:
                rows.append(done[seed, method, steps])
                continue
            x, nfe, seconds = _digits.run_sampler(digits, _digits.noise(n, seed=seed), method, steps)
            rows.append({"seed": seed, "method": method, "steps": steps, "nfe": nfe,
                         "fid": _digits.safe_fid(fid, x), "n_samples": n, "seconds": seconds})
            log(f"    seed {seed} {method:8s} {steps:5d} steps  digits-FID {rows[-1]['fid']:8.3f}  ({seconds:.1f} s)")
            write_csv(partial, rows, COLUMNS)
    write_csv(path, rows, COLUMNS)
    partial.unlink(missing_ok=True)
    return path


def summary(table: list[dict[str, Any]], draws: list[dict[str, Any]], quick: bool = False) -> dict[str, Any]:
    """Digits-FID of both sides of the claim per draw (seed 0 from ``table``), mean and sd, paired differences.

    Parameters
    ----------
    table : list of dict
        Rows of :mod:`analysis.quality_vs_steps` (its ``linear`` rows are the seed-0 draw).
    draws : list of dict
        Rows of :func:`run`; rows with another sample count than ``table``'s are ignored.
    quick : bool
        Which sizes of :mod:`analysis.quality_vs_steps` define the claim.

    Returns
    -------
    dict
        ``{"pndm": side, "ddim": side, "difference": {...}}``: each side has ``method``, ``steps``,
        ``fid_by_seed``, ``mean``, ``sd`` (sample standard deviation, NaN for one draw) and ``draws``; the
        difference (PNDM minus DDIM, negative = PNDM better) over the seeds both sides have has
        ``by_seed``, ``mean``, ``sd`` and ``draws``.
    """
    from analysis import quality_vs_steps

    pndm, pndm_steps, ddim, ddim_steps = quality_vs_steps.SIZES[quick]["claim"]
    n = next((r["n_samples"] for r in table if r["method"] == "data"), None)
    out: dict[str, Any] = {}
    for side, method, steps in (("pndm", pndm, pndm_steps), ("ddim", ddim, ddim_steps)):
        by_seed = {0: r["fid"] for r in table if r["schedule"] == "linear" and r["method"] == method
                   and r["steps"] == steps}
        by_seed.update({int(r["seed"]): r["fid"] for r in draws if r["method"] == method and r["steps"] == steps
                        and r["n_samples"] == n})
        by_seed = {s: float(v) for s, v in sorted(by_seed.items()) if math.isfinite(float(v))}
        out[side] = {"method": method, "steps": steps, "n_samples": n, "fid_by_seed": by_seed,
                     **_mean_sd(list(by_seed.values()))}
    common = sorted(set(out["pndm"]["fid_by_seed"]) & set(out["ddim"]["fid_by_seed"]))
    diff = {s: out["pndm"]["fid_by_seed"][s] - out["ddim"]["fid_by_seed"][s] for s in common}
    out["difference"] = {"by_seed": diff, **_mean_sd(list(diff.values()))}
    return out


def _mean_sd(values: list[float]) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()) if len(v) else math.nan,
            "sd": float(v.std(ddof=1)) if len(v) > 1 else math.nan, "draws": len(v)}


main = study_main(run, "claim_draws.csv", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
