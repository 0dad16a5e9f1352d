"""The head-to-head on the shipped digits UNet again, on 160 held-out noises, for the runs that led on 16.

:func:`pndmkit.studies.compare.compare_model` on noises 128-287 (seed 0; every one has a converged reference in
``analysis/results/real_cache``, and none was used to fit the optimised grids, noises 0-95), restricted
(``CompareConfig.candidates``) to the runs that matter, chosen from the 16-noise run of
``analysis/compare_digits.py`` (noises 128-143, ``analysis/results/compare_digits/`` and the later methods of
``analysis/results/compare_digits_new/``) and never from these results:

* per NFE the three best pndmkit (method, grid) runs and the three best peer (scheduler, option) runs of the
  16-noise run (:func:`candidates`; peers run on pndmkit's grids left out, as in the main table);
* ``dpm-solver++-3m-nolof`` (:data:`pndmkit.studies.compare.VARIANTS`: DPM-Solver++(3M) without lower-order
  final steps, the best peer's method at NFE 5-6) on pndmkit's ``leading`` grid at every NFE;
* reported apart (``given_grids``), the optimised ``unipc-2`` grids of ``analysis/results/grid_opt_digits.json``
  (NFE 5-10), as in ``analysis/compare_digits.py``.

Every ratio comes with its 95% paired bootstrap interval over the 160 noises (the best run of each side fixed
as chosen on them). The rows keep their per-sample errors (``sample_errors``, in the order of the noises), so
that other ratios and their intervals can be computed from ``compare.json`` alone (:func:`heldout_ratios`): the
16 noises 128-143 are among the 160 and the selection above saw them, so the ratios on the 144 noises 144-287
alone are a check free of that selection.

Run: ``python -m analysis.compare_digits_160 [--out analysis/results/compare_digits_160] [--n 160] [--first 128]
[--cache DIR]``: 25 minutes wall (16 CPU-minutes) on the shared 2-core machine, 827 network evaluations of the
batch of 160 noises; it only reads the cache (every reference is there).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np

from pndmkit.studies.compare import NFES, CompareConfig
from analysis.compare_digits import optimised_grids, parser, run
from analysis.tables import RESULTS

#: runs of each side kept per NFE from the 16-noise run
TOP = 3

#: the compare variant run on the leading grid at every NFE
NOLOF = ("pndmkit", "dpm-solver++-3m-nolof", "leading")


def previous_runs(folder: Path = RESULTS / "compare_digits", later: Path = RESULTS / "compare_digits_new"
                  ) -> list[dict]:
    """Every run of the 16-noise head-to-head: each row of ``folder/compare_runs.csv`` and the best rows of
    ``later/compare.json`` (methods registered after that run) that the first does not hold."""
    rows = [{"side": r["side"], "method": r["method"], "option": r["option"], "nfe_target": int(r["nfe_target"]),
             "error": float(r["error"])} for r in csv.DictReader((folder / "compare_runs.csv").open())]
    seen = {(r["side"], r["method"], r["option"], r["nfe_target"]) for r in rows}
    for r in json.loads((later / "compare.json").read_text())["cases"][0]["best"]:
        if (r["side"], r["method"], r["option"], r["nfe_target"]) not in seen:
            rows.append({k: r[k] for k in ("side", "method", "option", "nfe_target", "error")})
    return rows


def candidates(rows: list[dict], nfes=NFES, top: int = TOP) -> list[tuple]:
    """Per NFE the ``top`` best runs of each side of ``rows`` (peers on pndmkit's grids left out) and
    :data:`NOLOF`, as ``(side, method, option, nfe)``; ties broken by name."""
    from pndmkit.studies.peers import PEERS

    custom = {name for name, spec in PEERS.items() if not spec.builtin}
    out = []
    for nfe in nfes:
        for side in ("pndmkit", "peer"):
            ranked = sorted((r for r in rows if r["side"] == side and r["nfe_target"] == nfe
                             and r["method"] not in custom), key=lambda r: (r["error"], r["method"], r["option"]))
            out += [(side, r["method"], r["option"], nfe) for r in ranked[:top]]
        if (*NOLOF, nfe) not in out:
            out.append((*NOLOF, nfe))
    return out


def heldout_ratios(data: dict, skip: int = 16) -> dict[str, dict]:
    """Per NFE, from a ``compare.json`` of this script (rows with ``sample_errors``), on its noises after the first
    ``skip`` (default: 144-287, the noises the selection of :func:`candidates` never saw): the best pndmkit run
    and the best peer, each chosen on those noises among the rows of ``compare.json`` (a solver's best option on
    all the noises: where two options of one solver ran, the other is not in the file), ``ratio`` and its 95%
    interval ``ratio_interval``, and the
    ratio to that peer of ``dpm-solver++-3m-nolof`` (``nolof``) and of the best optimised grid (``optimized``),
    each with its interval (``*_interval``). Errors are RMS over the noises kept and their pixels."""
    from pndmkit.studies.statistics import ratio_interval

    case = data["cases"][0]

    def kept(row: dict) -> np.ndarray:
        return np.asarray(row["sample_errors"][skip:], dtype=np.float64)

    def rms(row: dict) -> float:
        return float(np.sqrt(np.mean(kept(row))))

    def against(row: dict, peer: dict) -> tuple[float, list]:
        return rms(row) / rms(peer), list(ratio_interval([(kept(row), kept(peer))]))

    out = {}
    for nfe in data["by_nfe"]:
        rows = [r for r in case["best"] if r["nfe_target"] == int(nfe) and "sample_errors" in r]
        ours = min((r for r in rows if r["side"] == "pndmkit"), key=rms)
        peer = min((r for r in rows if r["side"] == "peer"), key=rms)
        entry = {"best_pndmkit": {k: ours[k] for k in ("method", "option")} | {"error": rms(ours)},
                 "best_peer": {k: peer[k] for k in ("method", "option")} | {"error": rms(peer)}}
        entry["ratio"], entry["ratio_interval"] = against(ours, peer)
        nolof = next((r for r in rows if r["method"] == NOLOF[1] and r["option"] == NOLOF[2]), None)
        if nolof is not None:
            entry["nolof"], entry["nolof_interval"] = against(nolof, peer)
        opt = [r for r in case.get("optimized", ()) if r["nfe_target"] == int(nfe) and "sample_errors" in r]
        if opt:
            entry["optimized"], entry["optimized_interval"] = against(min(opt, key=rms), peer)
        out[nfe] = entry
    return out


def per_noise(data: dict) -> dict[str, dict]:
    """Per NFE, for the best pndmkit run and the best peer of ``data["by_nfe"]`` (rows with ``sample_errors``):
    the median over the noises of the per-noise ratio of their RMS errors (``median_ratio``), the share of the
    noises where pndmkit's error is the smaller (``pndmkit_smaller``) and the share of each side's summed squared
    error that its 5 worst noises carry (``worst5_pndmkit``, ``worst5_peer``): how far the RMS ratio rests on a
    few noises."""
    case = data["cases"][0]
    out = {}
    for nfe, entry in data["by_nfe"].items():
        def errors(side: str, label: str) -> np.ndarray:
            row = next(r for r in case["best"] if r["side"] == side and r["nfe_target"] == int(nfe)
                       and r["method"] == entry[label]["method"])
            return np.asarray(row["sample_errors"], dtype=np.float64)

        p, q = errors("pndmkit", "best_pndmkit"), errors("peer", "best_peer")
        out[nfe] = {"median_ratio": float(np.median(np.sqrt(p / q))), "pndmkit_smaller": float(np.mean(p < q)),
                    "worst5_pndmkit": float(np.sort(p)[-5:].sum() / p.sum()),
                    "worst5_peer": float(np.sort(q)[-5:].sum() / q.sum())}
    return out


def main(argv=None) -> int:
    p = parser(__doc__.split("\n\n")[0], "compare_digits_160", 160)
    p.add_argument("--nfe", type=int, nargs="+", default=list(NFES), help="NFEs (default: 5 6 8 10 15 20 50)")
    args = p.parse_args(argv)
    tic = time.perf_counter()
    nfes = tuple(args.nfe)
    chosen = candidates(previous_runs(), nfes)
    given = optimised_grids(Path(args.grids)) if args.grids else None
    if given:
        given = {m: {k: v for k, v in by.items() if k in nfes} for m, by in given.items()}
        given = {m: by for m, by in given.items() if by} or None
    cfg = CompareConfig(nfes=nfes, n=args.n, methods=tuple(sorted({c[1] for c in chosen if c[0] == "pndmkit"})),
                        peers=tuple(sorted({c[1] for c in chosen if c[0] == "peer"})), candidates=tuple(chosen))
    run(cfg, args.first, args.cache, given, Path(args.out), tic, sample_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
