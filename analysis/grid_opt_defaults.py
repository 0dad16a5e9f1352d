"""How many noises a grid optimisation needs: iPNDM at NFE 6 on an 8-dimensional four-mode mixture.

The mixture is ``gmm32d(dim=8, n_components=4)`` of :mod:`pndmkit.problems.builtin` (its default seed; seeds 1
and 2 are reported too). For each split of calibration / held-out noises, :func:`pndmkit.studies.grid_opt.optimize`
runs with its other defaults (degree 3, fallback on), once with the first time searched (``first_time="free"``,
the default) and once kept at ``t = 999`` (``"fixed"``), and the row records the searched grid's held-out error,
the best built-in grid's, the cut, its 95% paired bootstrap interval and whether the result fell back. The
``None`` split is ``optimize``'s own default (2048 / 2048 on this 8-dimensional problem). Every number is
deterministic except ``seconds``.

Run: ``python -m analysis.grid_opt_defaults [--out analysis/results/grid_opt_defaults.json]`` (about 2
CPU-minutes).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from pndmkit.problems.builtin import gmm32d
from pndmkit.studies import grid_opt
from analysis.tables import RESULTS, add_cache_and_out


#: (calibration, heldout) splits; ``None`` is optimize's default
SPLITS = ((8, 16), (64, 256), (None, None), (1024, 1024))

#: seeds of gmm32d(8, 4) run at 1024 / 1024
OTHER_SEEDS = (1, 2)


def row(mixture: object, calibration: int | None, heldout: int | None, first_time: str = "free") -> dict:
    """One optimisation of iPNDM's grid at NFE 6 on ``mixture`` with these noise counts."""
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", grid_opt.GridFallbackWarning)  # recorded in the row
        res = grid_opt.optimize("ipndm", mixture, 6, calibration=calibration, heldout=heldout, first_time=first_time)
    return {"calibration": res.calibration, "heldout": res.heldout, "default": calibration is None,
            "first_time": first_time, "first": float(res.searched_grid[0]),
            "heldout_error": res.heldout_error, "baseline_kind": res.baseline_kind,
            "baseline_error": res.baseline_error, "reduction": res.reduction,
            "heldout_interval": list(res.heldout_interval), "fell_back": res.fell_back,
            "calibration_error": res.calibration_error, "evaluations": res.evaluations,
            "seconds": time.perf_counter() - tic}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m analysis.grid_opt_defaults", description=__doc__.splitlines()[0])
    add_cache_and_out(p, RESULTS / "grid_opt_defaults.json", metavar="FILE.json", writes="JSON file path the results are written to (the shipped one is overwritten)", cache=False)
    args = p.parse_args(argv)
    out = {"problem": "gmm32d(dim=8, n_components=4)", "method": "ipndm", "nfe": 6,
           "rows": [row(gmm32d(dim=8, n_components=4), c, h, f) for c, h in SPLITS for f in ("free", "fixed")],
           "other_seeds": {str(s): row(gmm32d(dim=8, n_components=4, seed=s), 1024, 1024) for s in OTHER_SEEDS}}
    for r in out["rows"]:
        print(f"{r['calibration']}/{r['heldout']} {r['first_time']}: {r['heldout_error']:.3g} vs {r['baseline_kind']} "
              f"{r['baseline_error']:.3g}, cut {100 * r['reduction']:.0f}%, fell back {r['fell_back']}", flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
