"""Convergence on the shipped digits UNet next to a Gaussian mixture on the same schedule and grid.

The network study is :func:`pndmkit.studies.real.model_study` (DOP853 float64 reference from the same noises,
error checked at half tolerance); the mixture study is :func:`pndmkit.studies.convergence.make_study` on the
network's schedule (DDPM linear) with the same interval (``t = 999`` to ``s = 0.1``) and grid (uniform in
``t``). Both report fitted orders on ``--steps`` and errors at equal NFE budgets ``--nfe``; the network's
reference and sweeps are cached under ``--cache`` (resumable).

Run: ``python -m analysis.real_orders [--batch 4] [--steps 5,10,20,40,80] [--nfe 5,10,15,20]
[--out analysis/results/real_orders.json]``; the file is rewritten only where a number moved by more than
``REWRITE_RTOL`` (1e-8), so re-running it on another machine leaves the checkout clean. Cost on the 2-core machine: 10 CPU-seconds with the shipped cache
(``analysis/results/real_cache``, the default); well over an hour from scratch (the reference of the 4 noises with two methods'
sweeps took 39 CPU-minutes; the other methods' sweeps are thousands of network evaluations more).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pndmkit.methods import METHODS
from pndmkit.studies import convergence, real
from analysis import portable
from analysis.tables import RESULTS, add_cache_and_out, ints, write_json_if_changed

#: a run whose numbers all agree with the stored file within this relative tolerance leaves the file as it is:
#: the float64 sweeps move in their last digits between machines and thread counts, not by more
REWRITE_RTOL = 1e-8


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="digits")
    p.add_argument("--mixture", default="gmm2d")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=ints, default=list(real.DEFAULT_MODEL_STEPS))
    p.add_argument("--nfe", type=ints, default=[5, 10, 15, 20])
    p.add_argument("--methods", default=None, help="comma-separated (default: every fixed-step method)")
    add_cache_and_out(p, RESULTS / "real_orders.json", metavar="FILE.json",
                      writes="JSON file path the results are written to (the shipped one is rewritten only where a "
                             f"number moved by more than rtol {REWRITE_RTOL:g})")
    args = p.parse_args(argv)
    names = args.methods.split(",") if args.methods else [n for n, s in METHODS.items() if not s.adaptive]
    net = real.model_study(args.model, batch=args.batch, cache=args.cache, progress=True)
    mix = convergence.make_study(args.mixture, "ddpm-linear", t_start=net.t_start, t_end=net.t_end, batch=8)
    out = {"config": {**portable(vars(args)), "methods": names}, "reference_error": net.reference_error,
           "reference_rtol": net.reference_rtol, "t_start": net.t_start, "t_end": net.t_end}
    for label, study in (("network", net), ("mixture", mix)):
        results = (real.run_model_study(study, names, args.steps, progress=True) if label == "network"
                   else {n: convergence.sweep(study, n, args.steps) for n in names})
        out[label] = {"orders": {n: r.to_dict() for n, r in results.items()},
                      "at_nfe": {n: {str(k): v for k, v in d.items()}
                                 for n, d in real.errors_at_nfe(study, names, args.nfe).items()}}
        if label == "network":
            ok, smallest = real.check_reference(study, results)
            out["reference_ok"], out["smallest_error"] = ok, smallest
    if write_json_if_changed(Path(args.out), out, rtol=REWRITE_RTOL):
        print(f"wrote {args.out}")
    else:
        print(f"{args.out} kept: every number agrees with this run within rtol {REWRITE_RTOL:g}")
    return out


if __name__ == "__main__":
    main()
