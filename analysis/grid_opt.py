"""Optimised grids on the shipped digits UNet, directly and through the ``digits-gmm`` surrogate.

For each NFE budget (default 5, 6, 8, 10):

1. **Best method on built-in grids.** Every candidate method (``--methods``) runs on every built-in continuous
   grid kind (:data:`pndmkit.studies.grid_opt.BUILTIN_KINDS`) from the held-out noises; the method with the
   smallest error on its best kind is *the* method of that budget, and that error is the baseline.
2. **Direct.** :func:`pndmkit.studies.grid_opt.optimize` on the network itself (``--calibration`` noises, converged float64
   reference), judged on the held-out noises.
3. **Transfer.** :func:`pndmkit.studies.grid_opt.optimize` on ``digits-gmm`` alone (``--surrogate-calibration`` noises
   from another seed, exact reference, seconds), then :func:`pndmkit.studies.grid_opt.evaluate` of that grid
   on the network's held-out noises: how much of the gain survives the move from surrogate to network.

The JSON is rewritten after each budget, so an interrupted run keeps what it finished.

Held-out noises are noises ``calibration .. calibration + heldout - 1`` of ``pndmkit.noise.per_sample_noise`` (seed
0); the network's calibration noises are ``0 .. calibration - 1``; the surrogate's come from seed 1, so no
noise of either optimisation is a held-out one. Errors are RMS over the held-out samples and pixels in the
network's units (x 127.5 for grey levels) against DOP853 in float64 at ``rtol = 1e-8`` (reference error
measured at half the tolerance, reported). References are cached under ``--cache``: the first run spends
most of its time there (about 12,000 network calls on the whole batch for the two solves: the network is not
smooth in ``t`` between its integer training times, so the high-order reference takes small steps; see
docs/theory.md, "Converged references on a network").

Besides the RMS errors the JSON gives, per budget, how the direct cut is spread over the held-out samples
(``median_reduction``, and the share of the squared error carried by the worst 5% of samples on the baseline
and the optimised grid), and ``x0_gap``: the RMS difference between the network's and the surrogate's
``x0`` predictions along the network's own 100-step DDIM path from 16 noises (where the two ODEs differ).

Each held-out cut comes with its 95% paired bootstrap interval over the held-out samples
(:func:`pndmkit.studies.grid_opt.reduction_interval`): ``direct.heldout_interval`` and
``transfer.reduction_interval``; ``--add-intervals`` adds them to a JSON written before they existed, from its
stored grids (minutes, no optimisation); ``--add-intervals --recheck 192`` judges the same grids on noises 96-287
(``recheck``); its three extra reference blocks (noises 192-287) ship in the cache too (they took 25-30
CPU-minutes each).

Run: ``python -m analysis.grid_opt [--nfe 5,6,8,10] [--calibration 96] [--heldout 96]
[--out analysis/results/grid_opt_digits.json]``. About 40 CPU-minutes with the references shipped in
``analysis/results/real_cache`` (noises 0-287), about 2 hours more from scratch (six blocks of 32 noises,
17-28 CPU-minutes each on one core). The shipped JSON was made by two processes, ``--nfe 5,8`` and
``--nfe 6,10``, with their ``by_nfe`` and ``builtin`` entries merged (every number is deterministic; only
``seconds`` depends on the split).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from pndmkit.methods import get_method, steps_for_nfe
from pndmkit.noise import per_sample_noise
from pndmkit.stability import StabilityWarning
from pndmkit.studies import grid_opt
from pndmkit.studies.targets import StudyTarget
from analysis import portable
from analysis.tables import RESULTS, add_cache_and_out, ints, write_json

#: methods compared on the built-in grids (the strongest of each family at NFE 5-10)
CANDIDATES = ("ddim", "ipndm", "ipndm-v", "plms", "unipc-2", "unipc-3", "dpm-solver++-2m", "dpm-solver++-3m",
              "dpm-solver-2m", "deis-3", "ipndm-x0")


def builtin_table(study, methods, nfes):
    """``{nfe: {method: {kind: error}}}`` on the built-in grids of ``study``."""
    out = {}
    for nfe in nfes:
        out[nfe] = {}
        for name in methods:
            spec = get_method(name)
            steps = steps_for_nfe(spec, nfe)
            if steps is None:
                continue
            out[nfe][name] = {k: grid_opt.rms_error(study, spec, g)
                              for k, g in grid_opt.builtin_grids(study, steps, grid_opt.BUILTIN_KINDS).items()}
    return out


def per_sample(study, method: str, grid) -> np.ndarray:
    """RMS error of each sample (over its pixels, network units) of ``method`` on ``grid``."""
    return np.sqrt(grid_opt.sample_errors(study, get_method(method), np.asarray(grid)))


def spread(e_base: np.ndarray, e_opt: np.ndarray) -> dict:
    """How the error cut is spread over samples: the median sample's cut and the worst 5%'s share of the RMS."""
    k = max(1, int(round(0.05 * e_base.size)))
    share = lambda e: float(np.sort(e ** 2)[-k:].sum() / np.sum(e ** 2))  # noqa: E731
    return {"median_reduction": float(1.0 - np.median(e_opt) / np.median(e_base)),
            "worst5_share_baseline": share(e_base), "worst5_share_optimised": share(e_opt)}


def x0_gap(model: str, surrogate: str, schedule, shape, n: int = 16, steps: int = 100) -> dict:
    """Where the surrogate's ODE differs from the network's: x0 predictions along the network's own DDIM path.

    At each of ``steps + 1`` uniform times from the schedule's start, the RMS over ``n`` noises of (network x0
    prediction - surrogate x0 prediction) and the RMS change of the network's x0 prediction per step.
    """
    import torch

    from pndmkit.problems import get_problem
    from pndmkit.studies.real import load_model

    eps_net = load_model(model, schedule)[0]
    gm = get_problem(surrogate)
    ts = np.linspace(schedule.t_start, 0.0, steps + 1)
    x = torch.from_numpy(per_sample_noise(range(n), shape, 0).astype(np.float64))
    gap, moved, prev = [], [], None
    for a, b in zip(ts[:-1], ts[1:]):
        aa, ab = float(schedule.abar(a)), float(schedule.abar(b))
        e = eps_net(x, a).double()
        x0 = (x - (1 - aa) ** 0.5 * e) / aa ** 0.5
        g0 = (x.reshape(n, -1).numpy() - (1 - aa) ** 0.5 * gm.eps(x.reshape(n, -1).numpy(), a, schedule)) / aa ** 0.5
        gap.append(float(np.sqrt(np.mean((x0.reshape(n, -1).numpy() - g0) ** 2))))
        moved.append(float("nan") if prev is None else float(torch.sqrt(torch.mean((x0 - prev) ** 2))))
        prev = x0
        x = ab ** 0.5 * x0 + (1 - ab) ** 0.5 * e
    return {"t": ts[:-1].tolist(), "x0_gap": gap, "x0_change_per_step": moved}


def add_intervals(path: str, cache: str, heldout: int | None = None) -> dict:
    """Judge the stored grids again: intervals for a JSON written before they existed, or more held-out noises.

    Evaluates each budget's stored direct and transfer grids (:func:`pndmkit.studies.grid_opt.evaluate`) on
    the held-out noises ``calibration .. calibration + heldout - 1``. With the JSON's own ``heldout`` (the
    default) every run repeats a stored one, so the errors must match (checked) and only the intervals are
    added. With more, the results go to ``recheck[heldout]`` of each budget: the same grids on a larger
    held-out set that contains the original one (new reference blocks are solved and cached). No optimisation
    runs.
    """
    out = json.loads(Path(path).read_text())
    cfg = out["config"]
    n = cfg["heldout"] if heldout is None else heldout
    for nfe, row in out["by_nfe"].items():
        for key, grid in (("direct", row["direct"]["grid"]), ("transfer", row["surrogate"]["grid"])):
            ev = grid_opt.evaluate(row["method"], cfg["model"], grid, calibration=cfg["calibration"],
                                   heldout=n, cache=cache)
            if n == cfg["heldout"]:
                stored = row["direct"]["heldout_error"] if key == "direct" else row["transfer"]["error"]
                assert np.isclose(ev["error"], stored, rtol=1e-9), (nfe, key, ev["error"], stored)
                row[key]["heldout_interval" if key == "direct" else "reduction_interval"] = \
                    list(ev["reduction_interval"])
            else:
                row.setdefault("recheck", {}).setdefault(str(n), {})[key] = {
                    "error": ev["error"], "reduction": ev["reduction"],
                    "reduction_interval": list(ev["reduction_interval"]), "baseline_kind": ev["baseline_kind"],
                    "baseline_error": ev["baseline_error"], "builtin_errors": ev["builtin_errors"],
                    "reference_error": ev["reference_error"]}
            print(f"NFE {nfe} {key} on {n} held-out noises: cut {100 * ev['reduction']:.1f}%, 95% interval "
                  f"{100 * ev['reduction_interval'][0]:.1f}% to {100 * ev['reduction_interval'][1]:.1f}%", flush=True)
            write_json(Path(path), out)
    return out


def main(argv: list[str] | None = None) -> dict:
    from pndmkit.commands.args import positive_int

    p = argparse.ArgumentParser(prog="python -m analysis.grid_opt", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Cost: about 40 CPU-minutes with the shipped references (noises 0-287); "
                                       "see the module docstring.")
    p.add_argument("--model", default="digits", help="network: checkpoint name or path")
    p.add_argument("--surrogate", default="digits-gmm", help="mixture problem the transfer grids are fitted on")
    p.add_argument("--nfe", type=ints, default="5,6,8,10", help="NFE budgets, comma-separated")
    p.add_argument("--methods", default=",".join(CANDIDATES), help="candidate methods, comma-separated")
    p.add_argument("--calibration", type=positive_int, default=96, help="noises 0..N-1 the network grids are fitted on")
    p.add_argument("--heldout", type=positive_int, default=96, help="the next N noises, every grid is judged on")
    p.add_argument("--surrogate-calibration", type=positive_int, default=256, help="surrogate noises (seed 1)")
    p.add_argument("--degree", default="3", help="grid family degree on the network ('free' for every step)")
    p.add_argument("--surrogate-degree", default="free", help="grid family degree on the surrogate")
    p.add_argument("--maxfev", type=positive_int, default=None, help="objective evaluations per optimisation")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    add_cache_and_out(p, RESULTS / "grid_opt_digits.json", metavar="FILE.json", writes="JSON file path the results are written to (the shipped one is overwritten)")
    p.add_argument("--add-intervals", action="store_true",
                   help="only judge the grids stored in --out again: add the held-out cuts' bootstrap intervals, "
                        "or, with --recheck N, judge them on N held-out noises")
    p.add_argument("--recheck", type=positive_int, default=None,
                   help="with --add-intervals: judge the stored grids on this many held-out noises, from noise "
                        "--calibration on (results under 'recheck')")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", StabilityWarning)  # diverging built-in runs are measured, not warned about
    if args.recheck is not None and not args.add_intervals:
        p.error("--recheck N judges the stored grids again: it needs --add-intervals (without it the whole study "
                "would run and overwrite --out)")
    if args.add_intervals:
        return add_intervals(args.out, args.cache, args.recheck)
    degree = None if args.degree == "free" else int(args.degree)
    sdegree = None if args.surrogate_degree == "free" else int(args.surrogate_degree)
    target = StudyTarget.resolve(args.model, cache=args.cache)
    t0 = time.perf_counter()
    held = target.study(args.calibration, args.heldout)
    print(f"held-out reference: error {held.reference_error:.1e} ({time.perf_counter() - t0:.0f} s)", flush=True)
    table = builtin_table(held, args.methods.split(","), args.nfe)
    out = {"config": portable(vars(args)), "reference_error": held.reference_error, "pixel_scale": held.pixel_scale,
           "builtin": {str(k): v for k, v in table.items()},
           "x0_gap": x0_gap(args.model, args.surrogate, held.schedule, target.shape), "by_nfe": {}}
    for nfe in args.nfe:
        errs = {m: min(d.values()) for m, d in table[nfe].items()}
        method = min(errs, key=errs.get)
        kind = min(table[nfe][method], key=table[nfe][method].get)
        t1 = time.perf_counter()
        # first_time="fixed": the shipped tables (and the surrogate's transfer, judged from the network's t_start)
        # were made with the end points of the built-in grids, before optimize searched the first time by default
        direct = grid_opt.optimize(method, args.model, nfe, calibration=args.calibration, heldout=args.heldout,
                                   cache=args.cache, degree=degree, maxfev=args.maxfev, fallback=False,
                                   first_time="fixed")
        t2 = time.perf_counter()
        sur = grid_opt.optimize(method, args.surrogate, nfe, calibration=args.surrogate_calibration,
                                heldout=args.heldout, seed=1, degree=sdegree, schedule=held.schedule,
                                t_start=held.t_start, t_end=held.t_end, fallback=False, first_time="fixed")
        moved = grid_opt.evaluate(method, args.model, sur.grid, calibration=args.calibration, heldout=args.heldout,
                                  cache=args.cache)
        t3 = time.perf_counter()
        base_grid = grid_opt.builtin_grids(held, direct.steps, [kind])[kind]
        row = {"method": method, "baseline_kind": kind, "baseline_error": errs[method],
               "direct": {**direct.to_dict(), "seconds": t2 - t1,
                          **spread(per_sample(held, method, base_grid), per_sample(held, method, direct.grid))},
               "surrogate": {**sur.to_dict(), "seconds": t3 - t2},
               "transfer": {"error": moved["error"], "reduction": moved["reduction"],
                            "reduction_interval": list(moved["reduction_interval"]),
                            "baseline_kind": moved["baseline_kind"], "baseline_error": moved["baseline_error"]}}
        assert np.isclose(moved["baseline_error"], errs[method]) and np.isclose(direct.baseline_error, errs[method])
        out["by_nfe"][str(nfe)] = row
        print(f"NFE {nfe}: {method} on {kind} {errs[method]:.4g} -> direct {direct.heldout_error:.4g} "
              f"({100 * direct.reduction:.0f}%, {direct.evaluations} runs, {t2 - t1:.0f} s), transfer "
              f"{moved['error']:.4g} ({100 * moved['reduction']:.0f}%; surrogate's own {100 * sur.reduction:.0f}%)",
              flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out), out)
    return out


if __name__ == "__main__":
    main()
