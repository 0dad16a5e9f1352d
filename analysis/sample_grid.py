"""Samples where the samplers differ, for Figure 1: few NFE, the same noises, each image's error against the
converged sample.

The noises and the converged reference are those of ``pndmkit.studies.real.model_study("digits", batch=4)``,
the study of :mod:`analysis.real_orders` (fig2's error-vs-NFE panel), so its cached reference under
``analysis/results/real_cache`` is reused: the probability-flow ODE from the same noises, solved by DOP853 with
the network in float64 from ``t = 999`` to ``s = 0.1`` (its error is measured at half the tolerance and stored
as ``reference_error``). Every method runs on that study's grid (uniform in ``t``, same interval, network in
float64) at the largest step count that fits each NFE budget
(:func:`pndmkit.studies.real.steps_for_nfe`); the error of an image is the RMS of its difference to the
reference, in 8-bit grey levels (:data:`pndmkit.studies.real.PIXEL_SCALE` per unit).

Output NPZ: ``images`` (methods, budgets, k, 16, 16) float32 (non-finite pixels NaN), ``errors`` (methods,
budgets, k) in grey levels, ``reference`` (k, 16, 16), ``methods``, ``nfes`` (budgets), ``steps`` and ``nfe``
(methods, budgets; 0 where no step count fits), ``reference_error`` (grey levels) and ``model``.

Sizes: 6 methods (:data:`analysis.quality_nfe.METHODS`) at NFE 5, 6, 8, 10 on 4 noises: seconds when the
reference is cached, about 4 CPU-minutes to compute it (``--quick``: 2 methods, 2 budgets, 2 noises, a looser
reference).

Run: ``python -m analysis.sample_grid [--quick] [--out FILE]`` (default analysis/results/sample_grid.npz).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from analysis.tables import Log, stderr_log, study_main

NFES = [5, 6, 8, 10]
SIZES = {False: {"nfes": NFES, "batch": 4, "rtol": 1e-9, "methods": None},
         True: {"nfes": [5, 10], "batch": 2, "rtol": 1e-3, "methods": ["ddim", "ipndm"]}}


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    """Compute the grid (raises ``analysis.shipped_digits.Unavailable`` without the shipped model).

    The reference is cached in ``real_cache`` beside ``path`` (shared with :mod:`analysis.real_orders`).
    """
    import torch

    import pndmkit
    from analysis import shipped_digits, quality_nfe
    from pndmkit.studies.real import PIXEL_SCALE, model_study, steps_for_nfe

    digits = shipped_digits.load()  # the same checks and messages as the other digits studies
    size = SIZES[quick]
    methods = size["methods"] or quality_nfe.METHODS
    log(f"    converged reference of {size['batch']} noises (cached in {path.parent / 'real_cache'})")
    study = model_study("digits", batch=size["batch"], rtol=size["rtol"], cache=path.parent / "real_cache",
                        progress=True)
    k, shape = len(study.x_T), study.x_T.shape[-2:]
    images = np.full((len(methods), len(size["nfes"]), k, *shape), np.nan, dtype=np.float32)
    errors = np.full((len(methods), len(size["nfes"]), k), np.nan)
    steps = np.zeros((len(methods), len(size["nfes"])), dtype=np.int64)
    nfe = np.zeros_like(steps)
    with torch.inference_mode():
        for i, method in enumerate(methods):
            for j, budget in enumerate(size["nfes"]):
                n = steps_for_nfe(method, budget)
                if n is None:
                    continue
                sol = pndmkit.sample(study.problem.model, torch.from_numpy(study.x_T.copy()), schedule=study.schedule,
                                     method=method, steps=n, grid=study.grid, t_start=study.t_start,
                                     t_end=study.t_end)
                x = sol.x.numpy()
                steps[i, j], nfe[i, j] = n, sol.nfe
                errors[i, j] = PIXEL_SCALE * np.sqrt(np.mean((x - study.reference).reshape(k, -1) ** 2, axis=1))
                images[i, j] = np.where(np.isfinite(x), x, np.nan)[:, 0]
            log(f"    {method}: NFE {nfe[i].tolist()}, median error {np.nanmedian(errors[i], axis=1).round(2).tolist()}"
                " grey levels")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, images=images, errors=errors, reference=study.reference[:, 0].astype(np.float32),
                        methods=np.array(methods), nfes=np.array(size["nfes"]), steps=steps, nfe=nfe,
                        reference_error=PIXEL_SCALE * study.reference_error,
                        model=np.array(digits.description))
    os.replace(tmp, path)
    return path


main = study_main(run, "sample_grid.npz", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
