"""Two fitted solvers of ``analysis/unet_fitted.py`` on the digits UNet, noise by noise.

The reports of ``analysis/unet_fitted.py`` keep each fitted solver's grid, weights and base, and its RMS error on
noises 128-287; RMS over 160 noises rests on the few worst. This script runs both solvers of one NFE again on those
noises (against the shipped converged references) and compares them per noise: on how many noises the second is
the smaller, the median per-noise ratio of errors (second / first, RMS over pixels), the noises where the first is
worst, and both RMS errors without the five noises worst for either.

Run: ``python -m analysis.unet_fitted_per_noise A.json B.json [--nfe 5]
[--out analysis/results/compare_digits_160/fitted_per_noise]`` (writes ``.json`` and ``.md``; a few seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from analysis.compare_digits_leading_multistep import Runner, shipped_rows, write_report
from analysis.tables import RESULTS, add_cache_and_out


def _row(path: Path, nfe: int, p: argparse.ArgumentParser) -> dict:
    try:
        rows = {r["nfe"]: r for r in json.loads(path.read_text())["rows"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        p.error(f"{path}: not a report of analysis.unet_fitted ({exc})")
    if nfe not in rows:
        p.error(f"{path}: no row for --nfe {nfe} (it has {sorted(rows)})")
    return rows[nfe]


def main(argv=None) -> int:
    from pndmkit.commands.args import positive_int
    from pndmkit.studies.solver_file import BASE_METHOD, fitted_integrator

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("first", type=Path, metavar="A.json", help="a report of analysis.unet_fitted")
    p.add_argument("second", type=Path, metavar="B.json", help="another, with a row at the same NFE")
    p.add_argument("--nfe", type=positive_int, default=5, help="the NFE of the rows compared (default 5)")
    add_cache_and_out(p, RESULTS / "compare_digits_160" / "fitted_per_noise", metavar="PATH",
                      writes="PATH.json and PATH.md are written")
    args = p.parse_args(argv)
    rows = [_row(path, args.nfe, p) for path in (args.first, args.second)]
    config, _ = shipped_rows()
    held = Runner(config["first"], config["n"], args.cache, config["seed"])
    errors = []
    for r in rows:  # squared errors per noise (mean over pixels)
        base = r.get("base", BASE_METHOD)  # reports written before --base: iPNDM's
        errors.append(np.asarray(held.errors(fitted_integrator(r["weights"], held.schedule, base=base), r["grid"])))
    a, b = errors
    ratio = np.sqrt(b / a)
    worst = np.argsort(-np.maximum(a, b))[:5]
    keep = np.ones(a.size, dtype=bool)
    keep[worst] = False
    first = config["first"]
    report = {"command": " ".join(["python -m analysis.unet_fitted_per_noise",
                                   *(sys.argv[1:] if argv is None else argv)]),
              "nfe": args.nfe, "noises": [first, first + a.size - 1],
              "solvers": [{"report": str(path), "base": r.get("base", BASE_METHOD), "rms": float(np.sqrt(e.mean()))}
                          for path, r, e in zip((args.first, args.second), rows, errors)],
              "second_smaller_share": float(np.mean(b < a)), "median_ratio": float(np.median(ratio)),
              "worst_five": [{"noise": int(first + i), "first": float(np.sqrt(a[i])), "second": float(np.sqrt(b[i]))}
                             for i in worst],
              "rms_without_worst_five": [float(np.sqrt(a[keep].mean())), float(np.sqrt(b[keep].mean()))]}
    write_report(args.out, report, markdown)
    print(markdown(report), end="")
    return 0


def markdown(report: dict) -> str:
    s1, s2 = report["solvers"]
    lo, hi = report["noises"]
    lines = ["# Two fitted solvers on the digits UNet, noise by noise", "",
             f"Command: `{report['command'].strip()}`.", "",
             f"NFE {report['nfe']}, noises {lo}-{hi}; first: `{s1['report']}` (base {s1['base']}), second: "
             f"`{s2['report']}` (base {s2['base']}).", "",
             "| | first | second |", "|---|---:|---:|",
             f"| RMS error | {s1['rms']:.4e} | {s2['rms']:.4e} |",
             f"| RMS without the five worst noises | {report['rms_without_worst_five'][0]:.4e} | "
             f"{report['rms_without_worst_five'][1]:.4e} |", "",
             f"The second is the smaller on {100 * report['second_smaller_share']:.0f}% of the noises; median "
             f"per-noise ratio second / first {report['median_ratio']:.3f}.", "",
             "Five worst noises (either solver): " + ", ".join(
                 f"{w['noise']} ({w['first']:.3f} / {w['second']:.3f})" for w in report["worst_five"]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
