"""Samples of the shipped digits model for the paper's Figure 1: methods x step counts, same initial noise.

Rows ``ddim``, ``fon`` (classical 4th order), ``f-pndm``, ``s-pndm``, ``f-pndm-s``; columns 5, 10, 20, 50, 100
steps (DDIM's convention); ``k`` images per cell from the same ``k`` noises in every cell. Output NPZ:
``images`` (methods, steps, k, 16, 16) float32 in [-1, 1] (non-finite pixels set to NaN), ``methods``,
``steps``, ``nfe`` (methods, steps).

Run: ``python -m analysis.sample_grid [--quick] [--out FILE]`` (default analysis/results/sample_grid.npz).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from analysis._tables import Log, stderr_log, study_main

METHODS = ["ddim", "fon", "f-pndm", "s-pndm", "f-pndm-s"]
SIZES = {False: {"steps": [5, 10, 20, 50, 100], "k": 4}, True: {"steps": [5, 10], "k": 2}}


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    """Compute the grid (raises ``analysis._digits.Unavailable`` without the shipped model)."""
    from analysis import _digits

    digits = _digits.load()
    size = SIZES[quick]
    x_T = _digits.noise(size["k"], seed=7)
    images = np.full((len(METHODS), len(size["steps"]), size["k"], 16, 16), np.nan, dtype=np.float32)
    nfe = np.zeros((len(METHODS), len(size["steps"])), dtype=np.int64)
    for i, method in enumerate(METHODS):
        for j, steps in enumerate(size["steps"]):
            x, nfe[i, j], _ = _digits.run_sampler(digits, x_T, method, steps)
            images[i, j] = x[:, 0].float().numpy()
        log(f"    {method}: NFE {nfe[i].tolist()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, images=images, methods=np.array(METHODS), steps=np.array(size["steps"]), nfe=nfe,
                        model=np.array(digits.description))
    os.replace(tmp, path)
    return path


main = study_main(run, "sample_grid.npz", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
