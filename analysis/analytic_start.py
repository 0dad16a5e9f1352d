"""An analytic start on the digits UNet: skip the high-noise part by the data's Gaussian (mixture) flow.

At high noise the probability-flow ODE of image data is close to that of a Gaussian with the data's mean and
covariance, whose flow is known in closed form (and that of a Gaussian mixture is cheap to integrate to
1e-9). Such a start costs no network evaluation, so every evaluation of a budget goes to the rest of the
trajectory. This study measures whether that beats the late start the best few-step grids already use
(``leading``, ``leading-multistep``, and the tuned equal spacings of
``analysis/compare_digits_leading_multistep``, which give ``x_T`` itself at ``t0 < 999``):

1. **Floors** (calibration noises 0-95, the references of ``analysis/results/real_cache``): each start carried
   from ``t = 999`` to ``t1`` (``identity``: ``x_T`` as it is; ``gaussian``: the one-component fit of
   :meth:`pndmkit.problems.GaussianMixture.fit` to the 1797 digits images, 16x16 in [-1, 1], ``reg_covar =
   1e-3``; ``digits-gmm``: the built-in ten-component surrogate), then the network from ``t1`` by ``unipc-3``
   on 60 equally spaced steps. The error left is what the start costs; ``t1 = 999`` is the solver's own
   error at 60 steps (the control).
2. **Scan** (calibration noises 0-95): per start, NFE and method, step starts equally spaced from ``t1`` down
   to ``t_last``, then ``abar = 1``; the (method, ``t1``, ``t_last``) of smallest calibration RMS is chosen.
3. **Held out** (noises 128-287, seed 0, as ``analysis/compare_digits_160``): each chosen run against that
   study's best peer (per-noise errors read from its ``compare.json``), with the 95% paired bootstrap interval.

The analytic starts use the training data (their mean and covariance, or a mixture fitted to them); the
schedulers of the best peer do not. Results are reported apart, like the optimised grids.

Run: ``python -m analysis.analytic_start [--nfe 5] [--out analysis/results/compare_digits_160/analytic_start]``
(writes ``.json`` and ``.md``; the shipped run's wall time is in its markdown).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from analysis.compare_digits_leading_multistep import CALIBRATION, Runner, against, rms, shipped_rows, spaced
from analysis.tables import RESULTS, add_cache_and_out

STARTS = ("identity", "gaussian", "digits-gmm")
#: the times the floors are measured at (999: the control) and the first step starts the scan tries
FLOOR_T1S = (999, 800, 600)
T1S = (900, 800, 700, 600)
TLASTS = (100, 50)
#: the best method on ``leading-multistep`` and the tuned equal spacings at NFE 5-6
METHODS = ("unipc-3",)
FLOOR_METHOD, FLOOR_STEPS = "unipc-3", 60
#: tolerances of the mixtures' flows (their error is far below the network's)
FLOW_TOL = 1e-9


def start_laws() -> dict:
    """The analytic laws: ``None`` for the identity start, else a :class:`pndmkit.problems.GaussianMixture`."""
    from pndmkit.problems import GaussianMixture
    from pndmkit.problems.builtin import digits_images, get_problem

    images = digits_images(16).reshape(-1, 256)
    return {"identity": None, "gaussian": GaussianMixture.fit(images, 1, "full", reg_covar=1e-3, seed=0),
            "digits-gmm": get_problem("digits-gmm")}


def carry(law, x_T: np.ndarray, schedule, t1: float) -> np.ndarray:
    """``x_T`` at ``t = 999`` carried to ``t1`` by ``law``'s exact flow (``None``: left as it is)."""
    if law is None or t1 >= schedule.t_start:
        return x_T
    flat = x_T.reshape(len(x_T), -1)
    return law.reference(flat, schedule, schedule.t_start, float(t1), rtol=FLOW_TOL, atol=FLOW_TOL).reshape(x_T.shape)


def run(nfes, cache: str, log=print) -> dict:
    from pndmkit.methods import steps_for_nfe
    from pndmkit.studies.compare import compare_spec

    def steps_of(method: str, nfe: int) -> int:
        return steps_for_nfe(compare_spec(method).build(schedule).nfe, nfe)

    laws = start_laws()
    cal = Runner(*CALIBRATION, cache)
    schedule = cal.schedule
    starts = {(name, t1): carry(law, cal.x_T, schedule, t1) for name, law in laws.items()
              for t1 in sorted(set(T1S) | set(FLOOR_T1S), reverse=True) if name == "identity" or t1 < schedule.t_start}
    floors = []
    for (name, t1), x1 in starts.items():
        if t1 not in FLOOR_T1S:
            continue
        e = rms(cal.errors(FLOOR_METHOD, spaced(t1, 1, FLOOR_STEPS), x1))
        floors.append({"start": name, "t1": t1, "error": e})
        log(f"floor {name} t1={t1}: {e:.4e}")
    chosen = []
    for name, nfe in itertools.product(laws, nfes):
        tried = {}
        for method, (key, x1), t_last in itertools.product(METHODS, starts.items(), TLASTS):
            if key[0] != name or key[1] not in T1S:
                continue
            tried[(method, key[1], t_last)] = rms(cal.errors(method, spaced(key[1], t_last, steps_of(method, nfe)), x1))
        best = min(tried, key=tried.get)
        chosen.append({"start": name, "nfe": nfe, "method": best[0], "t1": best[1], "t_last": best[2],
                       "calibration_error": tried[best]})
        log(f"scan {name} NFE {nfe}: {best} calibration RMS {tried[best]:.4e}")
    config, shipped = shipped_rows()
    held = Runner(config["first"], config["n"], cache, config["seed"])
    rows = []
    for c in chosen:
        x1 = carry(laws[c["start"]], held.x_T, schedule, c["t1"])
        e = held.errors(c["method"], spaced(c["t1"], c["t_last"], steps_of(c["method"], c["nfe"])), x1)
        best = shipped[c["nfe"]]
        rows.append({**c, "error": rms(e), "to_peer": against(e, best["peer"]["sample_errors"]),
                     "to_pndmkit": against(e, best["pndmkit"]["sample_errors"])})
    return {"floors": floors, "rows": rows, "evaluations": cal.evaluations + held.evaluations,
            "peers": {nfe: {"peer": f"{s['peer']['method']}, {s['peer']['option']}", "peer_error": s["peer"]["error"]}
                      for nfe, s in shipped.items() if nfe in nfes}}


def markdown(report: dict) -> str:
    def iv(entry):
        lo, hi = entry["interval"]
        return f"{entry['ratio']:.3f} [{lo:.2f}, {hi:.2f}]"

    lines = ["# An analytic start on the digits UNet", "",
             f"Command: `{report['command']}` ({report['seconds']:.0f} s wall on the shared 2-core machine, "
             f"{report['evaluations']} network evaluations of the batch).", "",
             f"Floors: the start carried from `t = 999` to `t1`, then `{FLOOR_METHOD}` on {FLOOR_STEPS} equal steps "
             "from `t1`; RMS error at `abar = 1` against the converged reference, calibration noises 0-95 "
             "(`t1 = 999`: the 60-step solver's own error).", "", "| start | " + " | ".join(
                 f"t1 = {t}" for t in FLOOR_T1S) + " |", "|---|" + "---:|" * len(FLOOR_T1S)]
    for name in STARTS:
        cells = {f["t1"]: f"{f['error']:.3e}" for f in report["floors"] if f["start"] == name}
        lines.append(f"| {name} | " + " | ".join(cells.get(t, "as identity") for t in FLOOR_T1S) + " |")
    lines += ["", "Chosen on calibration noises 0-95 (method, `t1`, `t_last` of step starts equally spaced, then "
                  "`abar = 1`), judged on noises 128-287 against `compare_digits_160`'s best peer and best "
                  "pndmkit run (95% paired bootstrap intervals over the noises):", "",
              "| NFE | start | method | t1 | t_last | calibration RMS | held-out RMS | / best peer | "
              "/ best pndmkit of compare_digits_160 |",
              "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(report["rows"], key=lambda r: (r["nfe"], STARTS.index(r["start"]))):
        lines.append(f"| {r['nfe']} | {r['start']} | {r['method']} | {r['t1']} | {r['t_last']} | "
                     f"{r['calibration_error']:.4e} | {r['error']:.4e} | {iv(r['to_peer'])} | {iv(r['to_pndmkit'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nfe", type=int, nargs="+", default=[5], help="NFEs of the scan (default: 5)")
    add_cache_and_out(p, RESULTS / "compare_digits_160" / "analytic_start", metavar="PATH", writes="PATH.json and PATH.md are written")
    args = p.parse_args(argv)
    tic = time.perf_counter()
    report = run(args.nfe, args.cache)
    report["command"] = "python -m analysis.analytic_start --nfe " + " ".join(map(str, args.nfe)) + (
        f" --out {args.out}" if args.out != p.get_default("out") else "")
    report["seconds"] = time.perf_counter() - tic
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
