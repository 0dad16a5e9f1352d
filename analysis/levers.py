"""Two few-step levers measured with the head-to-head's own harness: lower-order final steps, and cheaper
warm-ups for the fourth-order ``-s`` methods.

(a) **Lower-order final steps.** iPNDM (AB1 .. AB4, fixed weights) with its last steps taken at lower order,
    as DPM-Solver's ``lower_order_final`` does, built with :class:`pndmkit.estimators.Final`:
    ``ipndm-lof1`` (last step DDIM), ``ipndm-lof2`` (last step AB2), ``ipndm-lof21`` (last DDIM, the one
    before AB2), ``ipndm-lof321`` (last DDIM, then AB2, then AB3: the order capped at the steps left),
    ``ipndm-lof1-few`` (``ipndm-lof1`` on grids of fewer than 15 steps only, DPM-Solver's threshold), and
    ``pec-s-ramp-lof1`` (the ramped PEC of (b) with its last step DDIM).
(b) **Warm-ups that cost fewer evaluations or are exact in another variable.** ``pec-s`` / ``pece-s`` with the
    Adams ramp instead of the 2-step PRK-s warm-up (``AdamsPC(4, ramp=True)``: a trapezoidal PEC/PECE pair
    first, one evaluation a step for PEC); F-PNDM-s with a multistep ramp is the registered ``ipndm-v``; and the
    RK warm-up on the data-prediction transfer with weights exact in ``lambda`` (``f-pndm-s-x0-lam``,
    ``pec-x0-lam``) or the ramp there (``pec-x0-lam-ramp``).

The variants that are not registered methods are registered for the run only (:func:`pndmkit.methods.register_method`)
and unregistered after. Cases, NFEs, samples, seeds and grid options are the head-to-head's defaults
(:class:`pndmkit.studies.compare.CompareConfig`); peers are restricted to DPM-Solver++ 2M/3M (with
``lower_order_final``), the best peers at every NFE of the full head-to-head (``analysis/results/compare.md``).

Run: ``python -m analysis.levers [--out analysis/results/levers]`` (writes ``levers.json`` and ``levers.md``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

from pndmkit.adams import AdamsPC, LinearMultistep
from pndmkit.estimators import Final, GradientEstimator, Single, Warmup
from pndmkit.integrator import Integrator
from pndmkit.methods import METHODS, MethodSpec, register_method, unregister_method
from pndmkit.runge_kutta import RungeKutta
from pndmkit.schedules import LinearVP
from pndmkit.studies.compare import NFES, CompareConfig, by_nfe, compare
from pndmkit.tableaus import RK4
from pndmkit.transfers import DataTransfer, DDIMTransfer
from analysis.tables import RESULTS, add_cache_and_out

PEERS = ("dpm-2m", "dpm-3m")
PRK_S = RungeKutta(RK4, variable="native")
LM = LinearMultistep


def _build(transfer: Callable[[Any], Any], estimator: GradientEstimator, name: str) -> Callable[[Any], Integrator]:
    return lambda schedule: Integrator(estimator, transfer(schedule), name)


#: name -> (lever, transfer, estimator, description)
VARIANTS: dict[str, tuple[str, Any, GradientEstimator, str]] = {
    "ipndm-lof1": ("a", DDIMTransfer, Final(LM(4), (Single(),)), "iPNDM, last step first order (DDIM)"),
    "ipndm-lof2": ("a", DDIMTransfer, Final(LM(4), (LM(2),)), "iPNDM, last step AB2"),
    "ipndm-lof21": ("a", DDIMTransfer, Final(LM(4), (Single(), LM(2))),
                    "iPNDM, last step DDIM, the one before AB2 (DPM-Solver's rule for order 3)"),
    "ipndm-lof321": ("a", DDIMTransfer, Final(LM(4), (Single(), LM(2), LM(3))),
                     "iPNDM, order capped at the steps left (DDIM, AB2, AB3)"),
    "ipndm-lof1-few": ("a", DDIMTransfer, Final(LM(4), (Single(),), few_steps=15),
                       "iPNDM, last step DDIM on grids of fewer than 15 steps only (DPM-Solver's threshold)"),
    "pec-s-ramp": ("b", DDIMTransfer, AdamsPC(4, "PEC", ramp=True), "AB/AM exact in s, PEC, Adams ramp (no RK)"),
    "pec-s-ramp-lof1": ("a+b", DDIMTransfer, Final(AdamsPC(4, "PEC", ramp=True), (Single(),)),
                        "pec-s-ramp with its last step first order (DDIM)"),
    "pece-s-ramp": ("b", DDIMTransfer, AdamsPC(4, "PECE", ramp=True), "AB/AM exact in s, PECE, Adams ramp (no RK)"),
    "f-pndm-s-x0-lam": ("b", DataTransfer, Warmup(PRK_S, 3, LM(4, weights="exact", variable="lambda", ramp=False)),
                        "PRK (e^lambda midpoint) for 3 steps, then AB4 exact in lambda, on x0"),
    "pec-x0-lam": ("b", DataTransfer, Warmup(PRK_S, 2, AdamsPC(4, "PEC", variable="lambda", ramp=False)),
                   "PRK (e^lambda midpoint) for 2 steps, then AB3 + AM4 exact in lambda, PEC, on x0"),
    "pec-x0-lam-ramp": ("b", DataTransfer, AdamsPC(4, "PEC", variable="lambda", ramp=True),
                        "AB/AM exact in lambda, PEC, Adams ramp, on x0"),
}
#: each variant against the method it changes (the last table of the report)
RELATIVE_TO = {**{m: "ipndm" for m in VARIANTS if m.startswith("ipndm-")}, "pec-s-ramp": "pec-s",
               "pec-s-ramp-lof1": "pec-s-ramp", "pece-s-ramp": "pece-s", "f-pndm-s-x0-lam": "f-pndm-s",
               "pec-x0-lam": "pec-s", "pec-x0-lam-ramp": "pec-s-ramp"}
#: registered methods measured beside them (the baselines of each lever)
BASELINES = ("ipndm", "ipndm-v", "f-pndm-s", "pec-s", "pece-s", "pece-x0", "deis-3")


def register_variants() -> list[str]:
    """Register the variants that are not registered yet; return their names."""
    added = []
    for name, (_, transfer, est, text) in VARIANTS.items():
        if name in METHODS:
            continue
        order = Integrator(est, transfer(LinearVP())).order()
        register_method(MethodSpec(name, _build(transfer, est, name), order, text, transfer.__name__, "analysis.levers"))
        added.append(name)
    return added


def geomean_table(cases: list[dict], methods: list[str], nfes: tuple) -> dict[str, dict[str, float]]:
    """Per method and NFE: the geometric mean over the cases of the best-option error (inf if any case broke)."""
    out: dict[str, dict[str, float]] = {}
    for m in methods:
        row = {}
        for n in nfes:
            errs = [r["error"] for c in cases for r in c["best"] if r["method"] == m and r["nfe_target"] == n]
            ok = len(errs) == len(cases) and all(math.isfinite(e) and e > 0 for e in errs)
            row[str(n)] = math.exp(sum(map(math.log, errs)) / len(errs)) if ok else math.inf
        out[m] = row
    return out


def markdown(result: dict) -> str:
    nfes = result["config"]["nfes"]
    table = result["geomean"]
    peer = {n: result["by_nfe"][str(n)]["best_peer"] for n in nfes if "best_peer" in result["by_nfe"].get(str(n), {})}
    lines = ["# Few-step levers: lower-order final steps and cheaper warm-ups", "",
             "Error: RMS of y = x / sqrt(abar) at the end against the exact trajectory, best grid option per case, "
             "geometric mean over gmm2d/gmm32d x discrete-linear/linear-vp (the head-to-head's cases, samples and "
             f"grids; `python -m analysis.levers`, {result['seconds']:.0f} s). Ratio columns: error / best of "
             "DPM-Solver++ 2M/3M (diffusers, own options).", ""]
    head = "| method | lever | " + " | ".join(f"NFE {n}" for n in nfes) + " |"
    lines += [head, "|---|---|" + "---:|" * len(nfes)]
    for m, row in table.items():
        lever = VARIANTS[m][0] if m in VARIANTS else "baseline"
        lines.append(f"| {m} | {lever} | " + " | ".join(f"{row[str(n)]:.2e}" for n in nfes) + " |")
    lines.append("| best peer | | " + " | ".join(f"{peer[n]['error']:.2e} ({peer[n]['method']})" for n in nfes) + " |")
    lines += ["", "Ratio to the best peer:", "", head, "|---|---|" + "---:|" * len(nfes)]
    for m, row in table.items():
        lever = VARIANTS[m][0] if m in VARIANTS else "baseline"
        lines.append(f"| {m} | {lever} | " + " | ".join(f"{row[str(n)] / peer[n]['error']:.2f}" for n in nfes) + " |")
    lines += ["", "Relative to the method it changes, on the same grids (error / its error):", "",
              head.replace("| lever |", "| relative to |"), "|---|---|" + "---:|" * len(nfes)]
    for m, base in RELATIVE_TO.items():
        lines.append(f"| {m} | {base} | " + " | ".join(f"{table[m][str(n)] / table[base][str(n)]:.3f}" for n in nfes)
                     + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    add_cache_and_out(parser, RESULTS / "levers", metavar="PATH", writes="PATH.json and PATH.md are written", cache=False)
    parser.add_argument("--quick", action="store_true", help="one case, NFE 5 and 10, few samples (a smoke run)")
    args = parser.parse_args(argv)
    added = register_variants()
    try:
        methods = BASELINES + tuple(VARIANTS)
        cfg = CompareConfig(methods=methods, peers=PEERS)
        if args.quick:
            cfg = CompareConfig(problems=("gmm2d",), schedules=("linear-vp",), nfes=(5, 10), n=64, methods=methods,
                                peers=PEERS)
        tic = time.perf_counter()
        out = compare(cfg, log=print)
        seconds = time.perf_counter() - tic
    finally:
        for name in added:
            unregister_method(name)
    result = {"config": out["config"], "seconds": seconds, "by_nfe": by_nfe(out["cases"], cfg.nfes),
              "geomean": geomean_table(out["cases"], list(methods), cfg.nfes),
              "variants": {k: {"lever": v[0], "transfer": v[1].__name__, "estimator": repr(v[2]), "about": v[3]}
                           for k, v in VARIANTS.items()},
              "cases": [{k: c[k] for k in ("problem", "schedule", "n", "best")} for c in out["cases"]]}
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
