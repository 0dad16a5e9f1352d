"""Digits-FID at equal NFE budgets with paired bootstrap intervals, and the abstract's claim.

The shipped digits model (a DDPM UNet on the discrete linear schedule, 1000 training steps) samples the same
``n`` initial noises (seed 0) with every method at every NFE budget (the largest step count whose run fits it,
:func:`pndmkit.studies.real.steps_for_nfe`), and with the two sides of the abstract's claim, 50-step F-PNDM
and 1000-step DDIM. Every run uses the grid uniform in ``t`` from ``t = 999`` to ``abar = 1`` (:data:`GRID`,
the trailing spacing), the grid of fig1 and of the network's error study; DDIM's convention (leading spacing)
starts at ``t = 800`` at 5 steps and spends its last step from ``t = 0`` to ``abar = 1``, which costs the
data-prediction multistep methods most of their quality at few steps (UniPC-3 at 5 steps: digits-FID 267 there
against 19.6 here, 300 samples, a one-off check not kept in the results; 225 against 22.4 on another 300 noises). Digits-FID is the Frechet distance
between the shipped digits classifier's features of the samples and of all 1797 digits
(:func:`pndmkit.nn.frechet.digits_fid`).

Intervals (:mod:`analysis.quality_intervals`): every sample set is resampled with the same index resamples, so
each value, each difference to the converged samples (1000-step DDIM, which is the probability-flow solution
to within its discretisation error) and each gap to the best method at the same budget gets a 95 % normal
bootstrap interval of the *paired* difference. Runs from the same noises differ far less than the level of one
run moves between noise draws; the paired intervals are what separates samplers.

Columns: ``method, nfe_budget, steps, nfe`` (the claim's rows have no budget); ``fid, fid_low, fid_high,
fid_sd``; ``to_converged*`` (FID minus the converged samples' FID); ``to_best*`` (FID minus the best FID at the
same budget; 0 for the best); ``n_samples, seconds``. The row ``method = data`` holds the digits-FID of ``n``
random real digits (mean and, in ``fid_sd``, the sd over 5 subsets): the floor at this ``n``. Beside the table,
``<stem>_claim.json`` holds both sides of the claim and their paired difference (:func:`verdict` reads it).

Sizes (:data:`SIZES`; environment variables override the full study): ``PNDMKIT_FID_SAMPLES`` (default 1000),
``PNDMKIT_FID_METHODS`` (comma-separated, default ddim, s-pndm, f-pndm, ipndm, dpm-solver++-2m, unipc-3),
``PNDMKIT_FID_NFES`` (default 5, 6, 8, 10, 15, 20). The default costs 1000 x (384 + 59 + 1000) model
evaluations (float32, batches of 256): 14 minutes on one lightly loaded CPU thread (0.57 ms per sample and
evaluation), of which the 1000-step DDIM side of the claim is 9.6 (``--threads 2`` spreads it over two
cores); the intervals take 15 s. Full size
for a GPU (``PNDMKIT_DIGITS_DEVICE=cuda``): ``PNDMKIT_FID_SAMPLES=10000`` and every fixed-step method
(``PNDMKIT_FID_METHODS=$(python -c "import pndmkit; print(','.join(n for n, m in pndmkit.METHODS.items() if not
m.adaptive))")`` or a list), about 3e7 evaluations of a 0.65 M-parameter
UNet; intervals shrink as ``1/sqrt(n)``.

Per-sample features are kept in ``<table>.features.npz`` while the study runs, so an interrupted run resumes
where it stopped (same ``n``); the file is removed when the table is written.

Run: ``python -m analysis.quality_nfe [--quick] [--out FILE] [--threads K]`` (default
analysis/results/quality_nfe.csv).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from analysis.tables import Log, read_json, stderr_log, study_main, write_csv, write_json

COLUMNS = ["method", "nfe_budget", "steps", "nfe", "fid", "fid_low", "fid_high", "fid_sd", "to_converged",
           "to_converged_low", "to_converged_high", "to_best", "to_best_low", "to_best_high", "n_samples",
           "seconds"]
METHODS = ["ddim", "s-pndm", "f-pndm", "ipndm", "dpm-solver++-2m", "unipc-3"]
NFES = [5, 6, 8, 10, 15, 20]
SIZES: dict[bool, dict[str, Any]] = {
    False: {"n": 1000, "methods": METHODS, "nfes": NFES, "claim": ("f-pndm", 50, "ddim", 1000), "resamples": 1000},
    True: {"n": 24, "methods": ["ddim", "ipndm"], "nfes": [5, 10], "claim": ("f-pndm", 5, "ddim", 10),
           "resamples": 100},
}
#: grid of every run: uniform in t from t = 999 to abar = 1 (the trailing spacing; see the module docstring)
GRID = "uniform"
#: environment variables overriding the full study's sizes
SAMPLES_ENV, METHODS_ENV, NFES_ENV = "PNDMKIT_FID_SAMPLES", "PNDMKIT_FID_METHODS", "PNDMKIT_FID_NFES"
#: the outcomes of :func:`decide`
VERDICTS = ("reproduced", "not reproduced", "indistinguishable")


def sizes(quick: bool = False, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The study's sizes: :data:`SIZES` with the environment's overrides (ignored with ``quick``).

    Raises ``pndmkit.errors.UsageError`` naming the variable for a value that is not allowed.
    """
    import pndmkit
    from pndmkit.errors import UsageError

    env = os.environ if environ is None else environ
    size = dict(SIZES[quick])
    if quick:
        return size
    if env.get(SAMPLES_ENV):
        text = env[SAMPLES_ENV]
        if not (text.isdigit() and int(text) >= 10):
            raise UsageError(SAMPLES_ENV, f"{SAMPLES_ENV} must be an integer >= 10 (samples), got {text!r}")
        size["n"] = int(text)
    if env.get(METHODS_ENV):
        names = [m.strip() for m in env[METHODS_ENV].split(",") if m.strip()]
        bad = [m for m in names if m not in pndmkit.METHODS or pndmkit.METHODS[m].adaptive]
        if bad or not names:
            raise UsageError(METHODS_ENV, f"{METHODS_ENV} must list fixed-step methods of pndmkit.METHODS, "
                                          f"got {bad or env[METHODS_ENV]!r}")
        size["methods"] = names
    if env.get(NFES_ENV):
        parts = [p.strip() for p in env[NFES_ENV].split(",") if p.strip()]
        if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
            raise UsageError(NFES_ENV, f"{NFES_ENV} must be comma-separated integers >= 1, got {env[NFES_ENV]!r}")
        size["nfes"] = sorted({int(p) for p in parts})
    return size


def plan(size: dict[str, Any]) -> dict[tuple[str, int], list[int]]:
    """``(method, steps) -> NFE budgets it serves``: each method at the largest step count fitting each budget.

    Budgets that no step count fits (F-PNDM below its warm-up) are left out; budgets served by the same step
    count share one run. The claim's two configurations are included (with no budget).
    """
    from pndmkit.studies.real import steps_for_nfe

    runs: dict[tuple[str, int], list[int]] = {}
    for method in size["methods"]:
        for budget in size["nfes"]:
            steps = steps_for_nfe(method, budget)
            if steps is not None:
                runs.setdefault((method, steps), []).append(budget)
    pndm, pndm_steps, ddim, ddim_steps = size["claim"]
    for key in ((pndm, pndm_steps), (ddim, ddim_steps)):
        runs.setdefault(key, [])
    return runs


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    """Sample, compute features and intervals, write the table and ``<stem>_claim.json``.

    Raises ``analysis.shipped_digits.Unavailable`` without the model or the feature network.
    """
    from analysis import shipped_digits
    from analysis import quality_intervals as qi
    from pndmkit.nn.frechet import digits_features

    digits = shipped_digits.load()
    fid = shipped_digits.fid_function()
    size = sizes(quick)
    n, runs = size["n"], plan(size)
    total = sum(_nfe_of(m, s) for m, s in runs)
    log(f"    {digits.description}; {n} samples, {len(runs)} runs, {total} evaluations per sample")
    x_T = shipped_digits.noise(n, seed=0)
    ref = qi.FrechetReference.digits()
    store = path.with_name(path.name + ".features.npz")
    features, meta = _load_features(store, n)
    for (method, steps) in runs:
        key = f"{method}|{steps}"
        if key in features:
            continue
        x, nfe, seconds = shipped_digits.run_sampler(digits, x_T, method, steps, grid=GRID)
        f = (digits_features(x).astype(np.float64) if shipped_digits.finite_images(x)
             else np.full((n, ref.mean.size), np.nan))  # a diverged run: NaN distances, NaN intervals
        features[key], meta[key] = f, (nfe, seconds)
        log(f"    {method:16s} {steps:5d} steps  NFE {nfe:5d}  digits-FID {float(ref.distance(f)):8.3f}  "
            f"({seconds:.1f} s)")
        _save_features(store, n, features, meta)
    t0 = time.perf_counter()
    draws = qi.fid_draws(ref, features, qi.resamples_of(n, size["resamples"]))
    pndm, pndm_steps, ddim, ddim_steps = size["claim"]
    converged = f"{ddim}|{ddim_steps}"

    def paired(a: str, b: str) -> dict[str, float]:
        return qi.difference_interval(ref, features[a], features[b], draws[a], draws[b])

    rows = []
    mean, sd = shipped_digits.data_fid_floor(fid, min(n, 1797))
    rows.append({"method": "data", "fid": mean, "fid_sd": sd, "n_samples": n})
    for budget in size["nfes"]:
        keys = [f"{m}|{s}" for (m, s), budgets in runs.items() if budget in budgets]
        values = {k: qi.fid_interval(ref, features[k], draws[k]) for k in keys}
        finite = [k for k in keys if math.isfinite(values[k]["value"])]
        best = min(finite, key=lambda k: values[k]["value"]) if finite else None
        for k in keys:
            method, steps = k.split("|")
            gap = {"value": 0.0} if k == best else paired(k, best) if best else {}
            rows.append(_row(method, int(steps), budget, meta[k], values[k], paired(k, converged), gap, n))
    claim = {}
    for side, (method, steps) in (("pndm", (pndm, pndm_steps)), ("ddim", (ddim, ddim_steps))):
        k = f"{method}|{steps}"
        value = qi.fid_interval(ref, features[k], draws[k])
        rows.append(_row(method, steps, None, meta[k], value, paired(k, converged), {}, n))
        claim[side] = {"method": method, "steps": steps, "nfe": meta[k][0], **value}
    claim["difference"] = paired(f"{pndm}|{pndm_steps}", converged)
    claim.update({"n_samples": n, "level": qi.LEVEL, "resamples": size["resamples"], "seed": 0,
                  "interval": "normal bootstrap interval of the paired difference (analysis.quality_intervals)"})
    write_json(claim_path(path), claim)
    log(f"    intervals: {time.perf_counter() - t0:.1f} s")
    write_csv(path, rows, COLUMNS)
    store.unlink(missing_ok=True)
    return path


def _nfe_of(method: str, steps: int) -> int:
    import pndmkit

    return pndmkit.METHODS[method].nfe(steps)


def _row(method: str, steps: int, budget: int | None, meta: tuple[int, float], value: dict, to_conv: dict,
         gap: dict, n: int) -> dict[str, Any]:
    row = {"method": method, "nfe_budget": budget, "steps": steps, "nfe": meta[0], "fid": value["value"],
           "fid_low": value["low"], "fid_high": value["high"], "fid_sd": value["sd"], "n_samples": n,
           "seconds": meta[1]}
    for name, d in (("to_converged", to_conv), ("to_best", gap)):
        row[name], row[f"{name}_low"], row[f"{name}_high"] = d.get("value"), d.get("low"), d.get("high")
    return row


def _load_features(store: Path, n: int) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, float]]]:
    if not store.is_file():
        return {}, {}
    with np.load(store) as data:
        if int(data["n"]) != n:
            return {}, {}
        keys = [str(k) for k in data["keys"]]
        return ({k: np.array(data[f"f{i}"]) for i, k in enumerate(keys)},
                {k: (int(data["nfe"][i]), float(data["seconds"][i])) for i, k in enumerate(keys)})


def _save_features(store: Path, n: int, features: dict[str, np.ndarray], meta: dict[str, tuple[int, float]]) -> None:
    keys = list(features)
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_name(store.name + ".tmp.npz")
    np.savez(tmp, n=n, keys=np.array(keys), nfe=np.array([meta[k][0] for k in keys]),
             seconds=np.array([meta[k][1] for k in keys]), **{f"f{i}": features[k] for i, k in enumerate(keys)})
    os.replace(tmp, store)


def claim_path(path: Path) -> Path:
    """Where :func:`run` writes both sides of the claim and their paired difference, beside the table."""
    return path.with_name(path.stem + "_claim.json")


def decide(low: float, high: float) -> str:
    """The claim's outcome from the interval ``[low, high]`` of ``FID(PNDM) - FID(DDIM)`` (lower FID = better).

    ``"reproduced"`` when the whole interval lies below 0 (PNDM's samples are closer to the data),
    ``"not reproduced"`` when it lies above 0 (DDIM's are), ``"indistinguishable"`` when it contains 0.
    Raises ``ValueError`` for a non-finite or reversed interval.
    """
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"the interval must be finite with low <= high, got [{low}, {high}]")
    if high < 0:
        return "reproduced"
    if low > 0:
        return "not reproduced"
    return "indistinguishable"


#: what each outcome means, in the words of the text
MEANING = {"reproduced": "the whole interval lies below 0: {pndm}'s samples score better, as the abstract claims",
           "not reproduced": "the whole interval lies above 0: {ddim}'s samples score better, the opposite of the "
                             "claim",
           "indistinguishable": "the interval contains 0: at this sample size the two cannot be told apart, so "
                                "the claimed 'higher quality' is not shown (nor is the opposite)"}


def verdict(claim: dict[str, Any]) -> dict[str, Any]:
    """The abstract's claim (50-step PNDM gives higher quality than 1000-step DDIM) judged on ``claim``.

    Parameters
    ----------
    claim : dict
        The ``<stem>_claim.json`` written by :func:`run`: ``pndm`` and ``ddim`` (method, steps, nfe, value,
        low, high), ``difference`` (value, low, high of ``FID(pndm) - FID(ddim)``), ``n_samples``, ``level``.

    Returns
    -------
    dict
        ``claim`` (the statement), ``verdict`` (one of :data:`VERDICTS`, from :func:`decide` on the
        difference's interval), ``pndm``, ``ddim``, ``difference``, ``n_samples``, ``level`` and ``text``, which
        states the same numbers and the same verdict in words.
    """
    p, d, diff = claim["pndm"], claim["ddim"], claim["difference"]
    outcome = decide(diff["low"], diff["high"])
    pct = f"{100 * claim['level']:.0f} %"
    statement = (f"{p['steps']}-step PNDM ({p['method']}) gives higher quality (lower digits-FID) than "
                 f"{d['steps']}-step DDIM ({d['method']}) (PNDM abstract)")
    text = (f"{statement}. Digits-FID of {claim['n_samples']} samples from the same noises: {p['method']} "
            f"{p['steps']} steps {p['value']:.2f} [{p['low']:.2f}, {p['high']:.2f}], {d['method']} {d['steps']} "
            f"steps {d['value']:.2f} [{d['low']:.2f}, {d['high']:.2f}]; paired difference {diff['value']:+.3f}, "
            f"{pct} interval [{diff['low']:+.3f}, {diff['high']:+.3f}] -> verdict: \"{outcome}\" ("
            + MEANING[outcome].format(pndm=p["method"], ddim=d["method"]) + ")")
    return {"claim": statement, "verdict": outcome, "pndm": p, "ddim": d, "difference": diff,
            "n_samples": claim["n_samples"], "level": claim["level"], "text": text}


def read_claim(path: Path) -> dict[str, Any]:
    """:func:`verdict` of the ``<stem>_claim.json`` beside the table ``path``."""
    return verdict(read_json(claim_path(path)))


main = study_main(run, "quality_nfe.csv", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
