"""``pndmkit compare``: pndmkit's methods against diffusers' schedulers at equal NFE on exact ground truth.

Writes ``compare.json`` (summaries and the best option per solver, NFE and case), ``compare.csv`` (the
same best rows), ``compare_runs.csv`` (every run) and ``compare.md`` (summary tables) under ``--out``
(default ``analysis/results``); ``--json`` prints one
JSON object whose ``by_nfe`` maps each NFE to the best pndmkit method, the best peer and their error ratio.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from pndmkit.compare import NFES, SCHEDULES, CompareConfig, compare, with_options

BEST_FIELDS = ("problem", "schedule", "nfe_target", "side", "method", "option", "steps", "nfe", "error", "sw",
               "nll", "s_start", "s_end")
RUN_FIELDS = ("problem", "schedule", "nfe_target", "side", "method", "option", "steps", "nfe", "error", "s_start",
              "s_end", "seconds")


def _write_csv(path: Path, fields: tuple, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_results(result: dict, out: Path) -> list[Path]:
    """Write the JSON and the two CSV files; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "compare.json", out / "compare.csv", out / "compare_runs.csv", out / "compare.md"]
    slim = {**result, "cases": [{k: v for k, v in c.items() if k != "runs"} for c in result["cases"]]}
    paths[0].write_text(json.dumps(slim, indent=1) + "\n")  # every run is in compare_runs.csv
    tag = [{"problem": c["problem"], "schedule": c["schedule"]} for c in result["cases"]]
    _write_csv(paths[1], BEST_FIELDS, [{**t, **r} for t, c in zip(tag, result["cases"]) for r in c["best"]])
    _write_csv(paths[2], RUN_FIELDS, [{**t, **r} for t, c in zip(tag, result["cases"]) for r in c["runs"]])
    paths[3].write_text(markdown(result) + "\n")
    return paths


def summary(result: dict, key: str = "by_nfe") -> str:
    """The by-NFE table as text."""
    lines = [f"{'NFE':>4}  {'best pndmkit':<28} {'error':>9}  {'best peer':<28} {'error':>9}  {'ratio':>6}"]
    for nfe, row in result[key].items():
        p, q = row["best_pndmkit"], row["best_peer"]
        lines.append(f"{nfe:>4}  {p['method'] + ' (' + str(p['nfe']) + ')':<28} {p['error']:9.2e}  "
                     f"{q['method'] + ' (' + str(q['nfe']) + ')':<28} {q['error']:9.2e}  {row['ratio']:6.3f}")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """Summary tables for the README: by NFE (all grids, shared grids) and the best per case."""
    out = ["# pndmkit compare", "",
           "Error: RMS of y = x / sqrt(abar) at the end against the exact trajectory; geometric mean over the "
           "cases " + ", ".join(f"{c['problem']}/{c['schedule']} (n={c['n']})" for c in result["cases"]) + ".", ""]
    for key, title in (("by_nfe", "Every pndmkit grid; peers with their own options"),
                       ("by_nfe_shared_grids",
                        "pndmkit restricted to grid families diffusers offers (spacings, Karras, log-SNR)"),
                       ("by_nfe_peers_on_pndmkit_grids", "Peers may also take pndmkit's quadratic grid "
                                                         "(IPNDM via trained_betas, DPM-Solver++ via timesteps=)")):
        out += [f"## {title}", "", "| NFE | best pndmkit (NFE) | error | best peer (NFE) | error | ratio |",
                "|---:|---|---:|---|---:|---:|"]
        for nfe, row in result.get(key, {}).items():
            p, q = row["best_pndmkit"], row["best_peer"]
            out.append(f"| {nfe} | {p['method']} ({p['nfe']}) | {p['error']:.2e} | {q['method']} ({q['nfe']}) "
                       f"| {q['error']:.2e} | {row['ratio']:.2f} |")
        out.append("")
    for case in result["cases"]:
        out += [f"## {case['problem']} / {case['schedule']} (n = {case['n']}, SW floor {case['sw_floor']:.4f})", "",
                "| NFE | side | method | grid option | steps | NFE used | error | SW | s_end |",
                "|---:|---|---|---|---:|---:|---:|---:|---:|"]
        for target in result["config"]["nfes"]:
            rows = [r for r in case["best"] if r["nfe_target"] == target]
            for side in ("pndmkit", "peer"):
                for r in sorted((r for r in rows if r["side"] == side), key=lambda r: r["error"])[:3]:
                    out.append(f"| {target} | {side} | {r['method']} | {r['option']} | {r['steps']} | {r['nfe']} "
                               f"| {r['error']:.2e} | {r['sw']:.4f} | {r['s_end']:.3g} |")
        out.append("")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    cfg = CompareConfig.quick() if args.quick else CompareConfig()
    cfg = with_options(cfg, problems=tuple(args.problem) if args.problem else None,
                       schedules=tuple(args.schedule) if args.schedule else None,
                       nfes=tuple(args.nfe) if args.nfe else None, n=args.n, seed=args.seed,
                       methods=tuple(args.methods) if args.methods else None,
                       peers=tuple(args.peers) if args.peers is not None else None)
    if args.no_grids:
        cfg = with_options(cfg, grids=False)
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
    result = compare(cfg, log=log)
    write = not args.no_write and (args.out is not None or not args.quick)
    if write:
        for path in write_results(result, Path(args.out or "analysis/results")):
            log(f"wrote {path}")
    if args.json:
        print(json.dumps({"by_nfe": result["by_nfe"], "by_nfe_shared_grids": result["by_nfe_shared_grids"],
                          "by_nfe_peers_on_pndmkit_grids": result["by_nfe_peers_on_pndmkit_grids"],
                          "config": result["config"],
                          "sw_floor": {f"{c['problem']}/{c['schedule']}": c["sw_floor"] for c in result["cases"]}}))
    else:
        print(summary(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="head-to-head with diffusers' schedulers at equal NFE (needs diffusers)",
                       description="Run every pndmkit method and diffusers scheduler on built-in Gaussian-mixture "
                                   "problems at equal NFE; report end-point errors against the exact trajectory "
                                   "and distances to p_0.")
    p.add_argument("--problem", nargs="+", help="built-in problems (default: gmm2d gmm32d)")
    p.add_argument("--schedule", nargs="+", choices=sorted(SCHEDULES), help="schedules (default: both)")
    p.add_argument("--nfe", nargs="+", type=int, help=f"target NFEs (default: {' '.join(map(str, NFES))})")
    p.add_argument("--n", type=int, help="samples per case (default 1000; 256 from 8 dimensions up)")
    p.add_argument("--seed", type=int, help="seed of the start samples (default 0)")
    p.add_argument("--methods", nargs="+", help="pndmkit methods (default: every non-adaptive one)")
    p.add_argument("--peers", nargs="*", help="peers (default: all; give none to run pndmkit only)")
    p.add_argument("--no-grids", action="store_true", help="default grid only, no search over grid options")
    p.add_argument("--quick", action="store_true", help="a few-second run (one problem, two NFEs, few solvers)")
    p.add_argument("--json", action="store_true", help="print one JSON object (by_nfe, config)")
    p.add_argument("--out", help="results folder (default analysis/results; --quick writes only with --out)")
    p.add_argument("--no-write", action="store_true", help="write no files")
    p.set_defaults(func=run)
