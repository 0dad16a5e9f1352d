"""The head-to-head on the shipped digits UNet: pndmkit's methods against diffusers' schedulers on the network.

:func:`pndmkit.studies.compare.compare_model` on the digits UNet (DDPM linear table, whole interval from
``t = 999`` to ``abar = 1``): the pndmkit methods below on every grid kind, every diffusers peer of
:data:`pndmkit.studies.peers.PEERS` with each of its options, at NFE 5, 6, 8, 10, 15, 20, 50, from the same
noises, scored against the converged float64 reference that ``analysis/results/real_cache`` ships for them (no
reference is solved; the short solves that carry it to a peer's own float32 top level and to DEIS's end at
``abar_0`` cost a few hundred evaluations).

Noises 128-143 (seed 0): held out from the grids that ``analysis/grid_opt.py`` fitted on this network (noises
0-95; ``analysis/results/grid_opt_digits.json``), which run here too, reported apart (``given_grids``), and
from the default calibration split of ``pndmkit grid optimize --model digits`` (noises 0-127).

Methods: the eleven candidates of ``analysis/grid_opt.py`` (the strongest of each family at NFE 5-10) and
``pec-s`` (the best of the fourth-order ``-s`` methods at NFE 50 on the mixtures); the other fourteen registered
methods (PRK, PIE, F-PNDM, FON, RK4, Euler, the other ``-s`` and ``-x0`` forms) never lead on the mixtures or on
the network's order study and would double the cost. 16 noises keep the study near half an hour of one CPU
core (16,300 network evaluations of the batch in float64); the peers cost what they cost on any number of
methods.

The built-in tables are what ``pndmkit compare --model digits --first-noise 128 --n 16 --methods ... --cache
analysis/results/real_cache --out DIR`` prints and writes (the same call); this script adds the optimised grids.

Run: ``python -m analysis.compare_digits [--out analysis/results/compare_digits] [--n 16] [--first 128]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pndmkit.studies.compare import NFES, CompareConfig, compare_model
from pndmkit.studies.reports import compare_summary, optimized_summary, write_compare_results
from analysis import portable
from analysis.tables import RESULTS, add_cache_and_out

#: analysis/grid_opt.py's candidates and pec-s
METHODS = ("ddim", "ipndm", "ipndm-v", "plms", "unipc-2", "unipc-3", "dpm-solver++-2m", "dpm-solver++-3m",
           "dpm-solver-2m", "deis-3", "ipndm-x0", "pec-s")


def optimised_grids(path: Path) -> dict:
    """``{method: {nfe: times}}``: the grids ``analysis/grid_opt.py`` fitted on the network (its ``direct`` ones)."""
    data = json.loads(path.read_text())
    out: dict = {}
    for nfe, entry in data["by_nfe"].items():
        out.setdefault(entry["direct"]["method"], {})[int(nfe)] = entry["direct"]["grid"]
    return out


def parser(description: str, folder: str, n: int) -> argparse.ArgumentParser:
    """The options of the digits head-to-head scripts: results into ``analysis/results/<folder>``, ``n`` noises
    from noise 128, the shipped references and optimised grids."""
    p = argparse.ArgumentParser(description=description)
    add_cache_and_out(p, RESULTS / folder, metavar="DIR",
                      writes="folder compare.json, compare.csv, compare_runs.csv and compare.md are written to")
    p.add_argument("--n", type=int, default=n, help=f"noises (default {n})")
    p.add_argument("--first", type=int, default=128, help="first noise (default 128)")
    p.add_argument("--grids", default=str(RESULTS / "grid_opt_digits.json"),
                   help="the optimised grids to run apart ('' for none)")
    return p


def main(argv=None) -> int:
    args = parser(__doc__.split("\n\n")[0], "compare_digits", 16).parse_args(argv)
    tic = time.perf_counter()
    given = optimised_grids(Path(args.grids)) if args.grids else None
    run(CompareConfig(nfes=NFES, n=args.n, methods=METHODS), args.first, args.cache, given, Path(args.out), tic)
    return 0


def run(cfg: CompareConfig, first: int, cache: str, given: dict | None, out: Path, tic: float,
        sample_errors: bool = False) -> dict:
    """:func:`compare_model` on the digits UNet; its results written to ``out`` (the config's paths relative to
    the source tree, its wall time since ``tic`` as ``seconds``) and its tables printed. ``sample_errors``: the
    rows keep their per-sample errors (``compare_model``'s option)."""
    result = compare_model("digits", cfg, first=first, cache=cache, given_grids=given, sample_errors=sample_errors,
                           log=print)
    result["config"] = portable(result["config"])
    result["config"]["seconds"] = time.perf_counter() - tic
    for path in write_compare_results(result, out):
        print(f"wrote {path}")
    print(compare_summary(result))
    if "by_nfe_optimized" in result:
        print(optimized_summary(result))
    return result


if __name__ == "__main__":
    raise SystemExit(main())
