"""Digits-FID against steps and NFE for the paper's methods (an analogue of PNDM's FID-vs-steps tables).

The shipped digits model (a DDPM UNet trained on the discrete linear schedule, 1000 steps) samples the same
``n`` initial noises with every method and step count; digits-FID is the Frechet distance between features
of the shipped digits classifier on the samples and on all 1797 digits (:func:`pndmkit.nn.frechet.digits_fid`).

Two step placements (column ``schedule``):

* ``linear``: the model's own schedule with DDIM's convention (leading spacing, final ``abar = 1``);
* ``cosine``: the model was trained on the linear schedule only, so a true cosine-schedule row would need a
  second model. What can be done with this one is to place the steps at the cosine schedule's noise levels
  (:func:`analysis._digits.cosine_grid`): the same probability-flow ODE, discretised like the cosine schedule.

Rows with ``method = data`` hold the digits-FID of ``n`` random real digits (mean over 5 draws, and its
standard deviation in ``fid_std``): the finite-sample floor of the distance at this ``n``.

Default sizes are chosen for a 2-core CPU (see ``SIZES``; about 2200 model evaluations per sample, 128 samples):
DDIM at 10, 20, 50, 100 and 1000 steps (it carries the paper's claim, 50-step PNDM vs 1000-step DDIM), F-PNDM up
to 100 steps, the other methods up to 50 (PRK-s, 4 evaluations per step, up to 20), PF at rtol = atol = 1e-3.
The environment variables ``PNDMKIT_FID_SAMPLES=N`` (more samples) and ``PNDMKIT_FID_PLAN=paper`` (every method
at 10, 20, 50, 100, 250, 1000 steps, both grids: for a GPU) scale it up.

The abstract's claim (50-step PNDM gives higher quality than 1000-step DDIM) is judged by :func:`verdict`
on this table's draw (seed 0, with a paired bootstrap), together with further noise draws of the same two
configurations from :mod:`analysis.claim_draws`.

Rows are written as they come to ``<table>.partial``; a rerun reuses them (same ``n``), so an interrupted study
resumes where it stopped.

Run: ``python -m analysis.quality_vs_steps [--quick] [--out FILE]`` (default analysis/results/quality_vs_steps.csv).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from analysis._tables import Log, read_csv, stderr_log, study_main, write_csv, write_json

COLUMNS = ["schedule", "method", "steps", "nfe", "fid", "fid_std", "n_samples", "seconds"]
UP_TO_50 = [10, 20, 50]
PAPER_STEPS = [10, 20, 50, 100, 250, 1000]
SIZES: dict[bool, dict[str, Any]] = {
    False: {"n": 128, "claim": ("f-pndm", 50, "ddim", 1000), "plan": {
        "linear": {"ddim": [10, 20, 50, 100, 1000], "fon": UP_TO_50, "pf": [0], "s-pndm": UP_TO_50,
                   "f-pndm": [10, 20, 50, 100], "prk-s": [10, 20], "f-pndm-s": UP_TO_50},
        "cosine": {"ddim": UP_TO_50, "f-pndm": UP_TO_50}}},
    True: {"n": 16, "claim": ("f-pndm", 5, "ddim", 10), "plan": {
        "linear": {"ddim": [5, 10], "s-pndm": [5], "f-pndm": [5], "pf": [0]},
        "cosine": {"ddim": [5]}}},
}
#: the issue's full grid (every method at every step count): ``PNDMKIT_FID_PLAN=paper``, for a GPU
PAPER_PLAN = {"linear": {m: ([0] if m == "pf" else PAPER_STEPS) for m in
                         ("ddim", "fon", "pf", "s-pndm", "f-pndm", "prk-s", "f-pndm-s")},
              "cosine": {m: PAPER_STEPS for m in ("ddim", "s-pndm", "f-pndm", "f-pndm-s")}}
#: PF tolerance: rtol = atol (1e-5 in score-SDE costs ~700 NFE per sample on the digits model)
PF_TOL = 1e-3
#: environment variable overriding the number of samples of the full study
SAMPLES_ENV = "PNDMKIT_FID_SAMPLES"
#: environment variable selecting the plan: ``paper`` for :data:`PAPER_PLAN`
PLAN_ENV = "PNDMKIT_FID_PLAN"


def plan_nfe(plan: dict[str, dict[str, list[int]]]) -> int:
    """Model evaluations per sample of the whole study (PF counted as 150)."""
    import pndmkit

    total = 0
    for per_method in plan.values():
        for method, steps in per_method.items():
            total += sum(150 if pndmkit.METHODS[method].adaptive else pndmkit.METHODS[method].nfe(s) for s in steps)
    return total


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    """Compute the table (raises ``analysis._digits.Unavailable`` without the model or the feature net)."""
    from analysis import _digits
    from pndmkit.adaptive import AdaptiveIntegrator

    digits = _digits.load()
    fid = _digits.fid_function()
    size = dict(SIZES[quick])
    n = int(os.environ.get(SAMPLES_ENV, size["n"])) if not quick else size["n"]
    if not quick and os.environ.get(PLAN_ENV) == "paper":
        size["plan"] = PAPER_PLAN
    log(f"    {digits.description}; {n} samples, {plan_nfe(size['plan'])} NFE per sample in all")
    mean, std = _digits.data_fid_floor(fid, n)
    rows = [{"schedule": "", "method": "data", "steps": 0, "nfe": 0, "fid": mean, "fid_std": std, "n_samples": n,
             "seconds": 0.0}]
    x_T = _digits.noise(n, seed=0)
    partial = path.with_name(path.name + ".partial")
    pndm, pndm_steps, ddim, ddim_steps = size["claim"]
    claim_samples = {}
    done = finished_rows(partial, n)
    for sname, per_method in size["plan"].items():
        for method, step_list in per_method.items():
            for steps in step_list:
                if (sname, method, steps) in done:  # an interrupted run's rows: same noises, same settings
                    rows.append(done[sname, method, steps])
                    continue
                grid = _digits.cosine_grid(digits.schedule, max(steps, 1)) if sname == "cosine" else None
                if method == "pf":  # the whole interval, in batches of 64 (the step control sees a batch as one ODE)
                    pf = AdaptiveIntegrator(digits.schedule, rtol=PF_TOL, atol=PF_TOL)
                    whole = [digits.schedule.t_start, digits.schedule.t_end]
                    x, nfe, seconds = _digits.run_sampler(digits, x_T, pf, 1, grid=whole, batch=64)
                else:
                    x, nfe, seconds = _digits.run_sampler(digits, x_T, method, steps, grid=grid)
                value = _digits.safe_fid(fid, x)
                if sname == "linear" and (method, steps) in ((pndm, pndm_steps), (ddim, ddim_steps)):
                    claim_samples[method, steps] = x
                rows.append({"schedule": sname, "method": method, "steps": steps or None, "nfe": nfe,
                             "fid": value, "fid_std": math.nan, "n_samples": n, "seconds": seconds})
                log(f"    {sname:6s} {method:8s} {steps:5d} steps nfe {nfe:5d}  digits-FID {value:8.3f}  "
                    f"({seconds:.1f} s)")
                write_csv(partial, rows, COLUMNS)  # progress survives an interrupted run
    partial.unlink(missing_ok=True)
    if len(claim_samples) == 2 and all(_digits.finite_images(x) for x in claim_samples.values()):
        boot = _digits.paired_fid_bootstrap(claim_samples[pndm, pndm_steps], claim_samples[ddim, ddim_steps])
        write_json(claim_path(path), {"pndm": [pndm, pndm_steps], "ddim": [ddim, ddim_steps], **boot})
    return write_csv(path, rows, COLUMNS)


def finished_rows(partial: Path, n: int) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Rows of an interrupted run (``<table>.partial``) with the same sample count, keyed by (schedule, method, steps)."""
    if not partial.is_file():
        return {}
    out = {}
    for r in read_csv(partial):
        steps = 0 if not isinstance(r["steps"], int) else r["steps"]
        if r["method"] != "data" and r["n_samples"] == n:
            out[r["schedule"], r["method"], steps] = {**r, "steps": steps or None}
    return out


def claim_path(path: Path) -> Path:
    """Where :func:`run` writes the paired bootstrap of the claim, beside the table."""
    return path.with_name(path.stem + "_claim.json")


#: verdicts of :func:`verdict`: PNDM's quality against DDIM's (higher quality = lower digits-FID)
VERDICTS = ("higher", "indistinguishable", "lower", "not computed")


def decide(difference: float, noise: float) -> str:
    """``"higher"`` / ``"lower"``: ``difference`` (FID of PNDM minus DDIM) is below ``-2 noise`` / above ``2 noise``.

    Otherwise ``"indistinguishable"``; ``"not computed"`` when either number is not finite.
    """
    if not (math.isfinite(difference) and math.isfinite(noise)):
        return "not computed"
    if difference <= -2 * noise:
        return "higher"
    if difference >= 2 * noise:
        return "lower"
    return "indistinguishable"


def verdict(rows: list[dict[str, Any]], quick: bool = False, boot: dict[str, Any] | None = None,
            draws: dict[str, Any] | None = None) -> dict[str, Any]:
    """The abstract's claim on this table: 50-step PNDM gives *higher* quality than 1000-step DDIM.

    Parameters
    ----------
    rows : list of dict
        Rows of this study (seed 0).
    quick : bool
        Which sizes define the claim.
    boot : dict, optional
        The paired bootstrap of the seed-0 draw written by :func:`run`.
    draws : dict, optional
        :func:`analysis.claim_draws.summary` (the claim on several noise draws).

    Returns
    -------
    dict
        ``verdict`` is one of :data:`VERDICTS`, from :func:`decide` with the noise taken, in this order of
        preference, as the standard error of the mean paired difference over the draws (at least two), the
        bootstrap standard deviation of the seed-0 difference, or the spread of the real-data floor.
    """
    pndm, pndm_steps, ddim, ddim_steps = SIZES[quick]["claim"]

    def fid_of(method: str, steps: int) -> float:
        for r in rows:
            if r["schedule"] == "linear" and r["method"] == method and r["steps"] == steps:
                return float(r["fid"])
        return math.nan

    a, b = fid_of(pndm, pndm_steps), fid_of(ddim, ddim_steps)
    diff = draws["difference"] if draws else None
    if diff and diff["draws"] >= 2:
        difference, noise = diff["mean"], diff["sd"] / math.sqrt(diff["draws"])
        evidence = (f"mean paired difference over {diff['draws']} noise draws {difference:+.3f} +- {diff['sd']:.3f} "
                    f"(sd; standard error {noise:.3f})")
    elif boot:
        difference, noise = a - b, boot["bootstrap_std"]
        evidence = (f"difference {difference:+.3f} on one noise draw; paired bootstrap std {noise:.3f}, "
                    f"FID({pndm}) <= FID({ddim}) in {100 * boot['fraction_a_le_b']:.0f} % of {boot['resamples']} "
                    "resamples")
    else:
        floor = next((r for r in rows if r["method"] == "data"), None)
        difference, noise = a - b, float(floor["fid_std"]) if floor else math.nan
        evidence = f"difference {difference:+.3f} on one noise draw; spread of the real-data floor {noise:.3f}"
    outcome = decide(difference, noise)
    words = {"higher": f"{pndm} gives higher quality (lower digits-FID): the claim holds here",
             "lower": f"{pndm} gives lower quality (higher digits-FID): the claim does not hold here",
             "indistinguishable": "indistinguishable: the difference is within twice its noise, so this study "
                                  "resolves neither the claimed 'higher' nor the opposite",
             "not computed": "not computed"}[outcome]
    sides = {}
    for key, method, steps, seed0 in (("pndm", pndm, pndm_steps, a), ("ddim", ddim, ddim_steps, b)):
        side = {"method": method, "steps": steps, "fid": seed0}
        if draws:
            side.update({k: draws[key][k] for k in ("mean", "sd", "draws", "fid_by_seed")})
        sides[key] = side
    spread = "".join(f"; {s['method']} {s['steps']} steps over {s['draws']} draws {s['mean']:.1f} +- {s['sd']:.1f}"
                     for s in sides.values() if s.get("draws", 0) >= 2)
    text = (f"{pndm} at {pndm_steps} steps: digits-FID {a:.3f}; {ddim} at {ddim_steps} steps: {b:.3f} (seed 0) -> "
            f"{words} ({evidence}{spread})")
    return {"claim": f"{pndm_steps}-step {pndm} gives higher quality (lower digits-FID) than {ddim_steps}-step "
                     f"{ddim} (PNDM abstract)",
            **sides, "difference": difference, "noise": noise, "verdict": outcome, "bootstrap": boot,
            "draws": draws["difference"] if draws else None, "text": text}


main = study_main(run, "quality_vs_steps.csv", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
