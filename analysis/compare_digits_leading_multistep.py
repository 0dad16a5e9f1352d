"""pndmkit on the multistep schedulers' leading timesteps (grid ``leading-multistep``) on the digits UNet.

The best peer of ``analysis/compare_digits_160`` at NFE 5-6 is ``DPMSolverMultistepScheduler(solver_order=3,
lower_order_final=False)`` on its ``timestep_spacing="leading"`` timesteps (``1000 // (N + 1)`` apart: 830, ..., 166
at N = 5, then ``abar = 1``), which pndmkit's grid kind ``leading-multistep`` lays out. Two parts:

1. **Candidates** (:func:`pndmkit.studies.compare.compare_model`, restricted by ``CompareConfig.candidates``): the
   ``--methods`` on ``leading-multistep`` at each ``--nfe``, on the same 160 noises (128-287, seed 0) and the same
   shipped references as ``analysis/compare_digits_160``; each is set against that study's best peer and best
   pndmkit run (their per-noise errors read from its ``compare.json``, not run again), each ratio with its 95%
   paired bootstrap interval (:func:`pndmkit.studies.statistics.ratio_interval`). ``dpm-solver++-3m-nolof`` there
   is the peer's own configuration: its per-noise errors against the peer's measure the parity.
2. **Start scan** (``--scan METHOD ...``): equally spaced integer step starts from ``t0`` down to ``t_last``, then ``abar =
   1``, the two ends chosen on calibration noises 0-95 (the references of ``analysis/results/real_cache``; none of
   the 160) for each method and NFE; the chosen grid is then judged on the 160 noises as in part 1
   (``leading-multistep`` is ``t0 = N (1000 // (N + 1))``, ``t_last = 1000 // (N + 1)``). A grid that starts
   below ``t = 999`` is given the noise itself at its first time, as compare does.

Run: ``python -m analysis.compare_digits_leading_multistep [--nfe 5 6 8] [--methods ...] [--scan METHOD ...]
[--scan-nfe 5 6] [--out analysis/results/compare_digits_160/leading_multistep]`` (writes ``.json`` and ``.md``); the shipped run
took the times its markdown states, on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from analysis.tables import RESULTS, add_cache_and_out

SHIPPED = RESULTS / "compare_digits_160" / "compare.json"
KIND = "leading-multistep"
METHODS = ("dpm-solver++-3m-nolof", "dpm-solver++-3m", "unipc-3", "ipndm", "unipc-2", "ipndm-v", "deis-3")
#: first and last step starts tried by the scan (the leading-multistep ends are added)
T0S = (700, 800, 900, 999)
TLASTS = (100, 150, 200, 250)
CALIBRATION = (0, 96)


def rms(e) -> float:
    """Root mean square of per-noise mean squared errors ``e`` (the RMS error over noises and pixels)."""
    return float(np.sqrt(np.mean(e)))


def shipped_rows(path: Path = SHIPPED) -> tuple[dict, dict]:
    """The config of ``analysis/compare_digits_160`` and, per NFE, its best peer and best pndmkit row (with
    ``sample_errors``)."""
    data = json.loads(path.read_text())
    rows = data["cases"][0]["best"]
    out = {}
    for nfe, entry in data["by_nfe"].items():
        pick = {}
        for side, label in (("peer", "best_peer"), ("pndmkit", "best_pndmkit")):
            pick[side] = next(r for r in rows if r["side"] == side and r["nfe_target"] == int(nfe)
                              and r["method"] == entry[label]["method"] and r["option"] in entry[label]["options"])
        out[int(nfe)] = pick
    return data["config"], out


def judged(errors: dict, best: dict) -> dict:
    """Per name of ``errors`` (per-noise errors on noises 128-287): its RMS and its ratios to ``best``'s peer and
    pndmkit rows (:func:`shipped_rows`), with intervals (:func:`against`)."""
    return {name: {"error": rms(e), "to_peer": against(e, best["peer"]["sample_errors"]),
                   "to_pndmkit": against(e, best["pndmkit"]["sample_errors"])} for name, e in errors.items()}


def ratio_text(entry: dict) -> str:
    """``ratio [lo, hi]`` of an :func:`against` entry, for a markdown cell."""
    lo, hi = entry["interval"]
    return f"{entry['ratio']:.3f} [{lo:.2f}, {hi:.2f}]"


def write_report(out, report: dict, markdown) -> None:
    """``out.json`` (``report``) and ``out.md`` (``markdown(report)``)."""
    out = Path(out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))


def against(row_errors, base_errors) -> dict:
    from pndmkit.studies.statistics import ratio_interval

    a, b = np.asarray(row_errors, dtype=np.float64), np.asarray(base_errors, dtype=np.float64)
    return {"ratio": rms(a) / rms(b), "interval": list(ratio_interval([(a, b)]))}


def candidates(nfes, methods, config: dict, cache: str, log=print) -> list[dict]:
    """Part 1: compare_model restricted to ``methods`` on ``leading-multistep`` at ``nfes``."""
    from pndmkit.studies.compare import CompareConfig, compare_model

    cfg = CompareConfig(nfes=tuple(nfes), n=config["n"], seed=config["seed"], methods=tuple(methods), peers=(),
                        candidates=tuple(("pndmkit", m, KIND, nfe) for nfe in nfes for m in methods))
    result = compare_model(config["model"], cfg, first=config["first"], cache=cache, sample_errors=True, log=log)
    return [r for r in result["cases"][0]["runs"] if "sample_errors" in r]


class Runner:
    """One method on an explicit grid from the noises ``x_T`` of a block, per-noise mean squared errors (over
    pixels, at ``abar = 1``, where ``y = x``) against the cached reference: compare's error for grids that end
    at ``abar = 1`` (a first time below the top gets ``x_T`` itself, as compare gives it)."""

    def __init__(self, first: int, n: int, cache: str, seed: int = 0):
        from pndmkit.studies.targets import StudyTarget, reference_blocks

        target = StudyTarget.resolve("digits", cache=cache, seed=seed)
        blocks = [target.study(i, k) for i, k in reference_blocks(first, n)]
        self.schedule = target.schedule
        problem = blocks[0].problem
        self.model = lambda x, t: problem.eps_numpy(np.array(x, dtype=np.float64), float(t))  # as compare calls it
        self.x_T = np.concatenate([b.x_T for b in blocks])
        self.ref = np.concatenate([b.reference for b in blocks])
        self.evaluations = 0

    def errors(self, method, grid, x_start: np.ndarray | None = None) -> np.ndarray:
        """Per-noise mean squared errors of ``method`` (a name, or an integrator built on the schedule) on ``grid``,
        started from ``x_start`` at ``grid[0]`` (default: the noises ``x_T`` themselves)."""
        from pndmkit.studies.compare import compare_spec

        x = self.x_T if x_start is None else x_start
        integrator = method if hasattr(method, "solve") else compare_spec(method).build(self.schedule)
        sol = integrator.solve(self.model, x.copy(), np.asarray(grid, dtype=np.float64))
        self.evaluations += sol.nfe
        d = (sol.x - self.ref).reshape(len(x), -1)
        return np.mean(d ** 2, axis=1)


def spaced(t0: int, t_last: int, steps: int) -> list[float]:
    """``steps`` starts equally spaced (rounded to training indices) from ``t0`` down to ``t_last``, then -1."""
    if steps == 1:
        return [float(t0), -1.0]
    return [float(t) for t in np.round(np.linspace(t0, t_last, steps))] + [-1.0]


def scan(nfes, methods, cache: str, t0s=T0S, t_lasts=TLASTS, log=print) -> dict:
    """Part 2's choice: per (method, NFE) the (t0, t_last) of ``t0s x t_lasts`` and leading-multistep's with the
    smallest RMS error on the calibration noises."""
    from pndmkit.grids import make_grid
    from pndmkit.methods import steps_for_nfe
    from pndmkit.studies.compare import compare_spec

    cal = Runner(*CALIBRATION, cache)
    chosen = {}
    for method, nfe in itertools.product(methods, nfes):
        spec = compare_spec(method)
        steps = steps_for_nfe(spec.build(cal.schedule).nfe, nfe)
        lm = make_grid(cal.schedule, steps, KIND)
        tried = {}
        for t0, t_last in sorted(set(itertools.product(t0s, t_lasts)) | {(int(lm[0]), int(lm[-2]))}):
            if t_last < t0:
                tried[(t0, t_last)] = rms(cal.errors(method, spaced(t0, t_last, steps)))
        best = min(tried, key=tried.get)
        chosen[(method, nfe)] = {"grid": spaced(*best, steps), "t0": best[0], "t_last": best[1],
                                 "calibration_error": tried[best],
                                 "calibration_error_leading_multistep": tried[(int(lm[0]), int(lm[-2]))]}
        log(f"scan {method} NFE {nfe}: best (t0, t_last) = {best}, calibration RMS {tried[best]:.4g} "
            f"(leading-multistep {tried[(int(lm[0]), int(lm[-2]))]:.4g})")
    return chosen


def markdown(report: dict) -> str:
    def iv(entry):
        lo, hi = entry["interval"]
        return f"{entry['ratio']:.3f} [{lo:.2f}, {hi:.2f}]"

    lines = ["# pndmkit on `leading-multistep` (the multistep schedulers' leading timesteps), digits UNet",
             "", f"Command: `{report['command']}` ({report['seconds']:.0f} s wall on the shared 2-core machine, "
                 f"{report['evaluations']} network evaluations of the batch in part 1).", "",
             "Noises 128-287 (seed 0) and references of `analysis/results/real_cache`, as "
             "`analysis/compare_digits_160`; error: RMS over noises and pixels at `abar = 1` against the converged "
             "reference. The best peer and the best pndmkit run are that study's (`compare_digits_160/compare.json`, "
             "per-noise errors read from it, not rerun). Ratios with their 95% paired bootstrap interval over the "
             "noises (`pndmkit.studies.statistics.ratio_interval`).", "",
             "| NFE | method | grid | error | / best peer | / best pndmkit of compare_digits_160 |",
             "|---:|---|---|---:|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['nfe']} | {r['method']} | {r['grid']} | {r['error']:.4e} | {iv(r['to_peer'])} | "
                     f"{iv(r['to_pndmkit'])} |")
    if report.get("scan"):
        lines += ["", "Rows `starts t0..t_last (scan)`: step starts equally spaced from `t0` down to `t_last` (rounded "
                      "to training indices), then `abar = 1`, the ends chosen per method and NFE on calibration noises "
                      "0-95 (below); like compare's optimised grids they are tuned grids, not a built-in kind. The "
                      "multistep schedulers accept such timesteps too (`set_timesteps(timesteps=...)`): on "
                      "`dpm-solver++-3m-nolof` the gain is the grid's, not the method's."]
    lines += ["", "Best peer and best pndmkit run of `compare_digits_160`:", "",
              "| NFE | best peer | error | best pndmkit | error |", "|---:|---|---:|---|---:|"]
    for nfe, s in sorted(report["shipped"].items()):
        lines.append(f"| {nfe} | {s['peer']} | {s['peer_error']:.4e} | {s['pndmkit']} | {s['pndmkit_error']:.4e} |")
    if report.get("parity"):
        lines += ["", "Parity of `dpm-solver++-3m-nolof` on `leading-multistep` with the peer "
                      "`dpm-3m-nolof, timestep_spacing=leading` (its per-noise mean squared errors):", ""]
        for nfe, p in sorted(report["parity"].items()):
            lines.append(f"- NFE {nfe}: RMS errors {p['ours']:.7e} (pndmkit) and {p['peer']:.7e} (peer), relative "
                         f"difference {p['relative']:.1e}; largest per-noise relative difference "
                         f"{p['max_per_noise']:.1e}")
    if report.get("scan"):
        lines += ["", "Start scan: the (t0, t_last) chosen on calibration noises 0-95, RMS error there against "
                      "`leading-multistep`'s:", "", "| NFE | method | t0 | t_last | calibration error | "
                      "leading-multistep's |", "|---:|---|---:|---:|---:|---:|"]
        for s in report["scan"]:
            lines.append(f"| {s['nfe']} | {s['method']} | {s['t0']} | {s['t_last']} | {s['calibration_error']:.4e} | "
                         f"{s['calibration_error_leading_multistep']:.4e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nfe", type=int, nargs="+", default=[5, 6, 8], help="NFEs (default: 5 6 8)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"methods (default: {' '.join(METHODS)})")
    p.add_argument("--scan", nargs="*", default=[], metavar="METHOD",
                   help="also part 2, the start scan (chosen on noises 0-95), for these methods (default: none)")
    p.add_argument("--scan-nfe", type=int, nargs="+", default=[5, 6], help="NFEs of the scan (default: 5 6)")
    p.add_argument("--t0", type=int, nargs="+", default=list(T0S), help="first starts of the scan (default: "
                   f"{' '.join(map(str, T0S))})")
    p.add_argument("--t-last", type=int, nargs="+", default=list(TLASTS), help="last starts of the scan (default: "
                   f"{' '.join(map(str, TLASTS))})")
    add_cache_and_out(p, RESULTS / "compare_digits_160" / "leading_multistep", metavar="PATH", writes="PATH.json and PATH.md are written")
    args = p.parse_args(argv)
    tic = time.perf_counter()
    config, shipped = shipped_rows()
    rows = []
    runs = candidates(args.nfe, args.methods, config, args.cache)
    evaluations = sum(r["model_calls"] for r in runs)
    parity = {}
    for r in runs:
        best = shipped[r["nfe_target"]]
        rows.append({"nfe": r["nfe_target"], "method": r["method"], "grid": r["option"], "error": r["error"],
                     "to_peer": against(r["sample_errors"], best["peer"]["sample_errors"]),
                     "to_pndmkit": against(r["sample_errors"], best["pndmkit"]["sample_errors"])})
        if r["method"] == "dpm-solver++-3m-nolof" and best["peer"]["method"] == "dpm-3m-nolof":
            a, b = np.asarray(r["sample_errors"]), np.asarray(best["peer"]["sample_errors"])
            parity[r["nfe_target"]] = {"ours": rms(a), "peer": rms(b), "relative": abs(rms(a) / rms(b) - 1),
                                       "max_per_noise": float(np.max(np.abs(np.sqrt(a / b) - 1)))}
    scanned = []
    if args.scan:
        held = Runner(config["first"], config["n"], args.cache, config["seed"])
        check = runs[0]  # the runner's error is compare's
        from pndmkit.grids import make_grid

        mine = held.errors(check["method"], make_grid(held.schedule, check["steps"], KIND))
        assert np.allclose(mine, check["sample_errors"], rtol=1e-9, atol=0), "the runner is not compare's error"
        for (method, nfe), c in scan(args.scan_nfe, args.scan, args.cache, args.t0, args.t_last).items():
            errors = held.errors(method, c["grid"])
            best = shipped[nfe]
            scanned.append({"nfe": nfe, "method": method, **c})
            rows.append({"nfe": nfe, "method": method, "grid": f"starts {c['t0']}..{c['t_last']} (scan)",
                         "error": rms(errors), "to_peer": against(errors, best["peer"]["sample_errors"]),
                         "to_pndmkit": against(errors, best["pndmkit"]["sample_errors"])})
    rows.sort(key=lambda r: (r["nfe"], r["error"]))
    report = {"command": "python -m analysis.compare_digits_leading_multistep "
                         + " ".join(["--nfe", *map(str, args.nfe), "--methods", *args.methods]
                                    + (["--scan", *args.scan, "--scan-nfe", *map(str, args.scan_nfe), "--t0",
                                        *map(str, args.t0), "--t-last", *map(str, args.t_last)] if args.scan else [])
                                    + (["--out", args.out] if args.out != p.get_default("out") else [])),
              "seconds": time.perf_counter() - tic, "evaluations": evaluations, "rows": rows, "parity": parity,
              "scan": scanned,
              "shipped": {nfe: {"peer": f"{s['peer']['method']}, {s['peer']['option']}", "peer_error": s["peer"]["error"],
                                "pndmkit": f"{s['pndmkit']['method']}, {s['pndmkit']['option']}",
                                "pndmkit_error": s["pndmkit"]["error"]} for nfe, s in shipped.items()
                          if nfe in args.nfe}}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
