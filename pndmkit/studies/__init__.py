"""The study harness the CLI, ``analysis/`` and ``paper_figures/`` share.

* :mod:`pndmkit.studies.convergence` -- error-against-steps sweeps and fitted orders on exact ground truth.
* :mod:`pndmkit.studies.compare` -- pndmkit's methods against diffusers' schedulers at equal NFE.
* :mod:`pndmkit.studies.peers` -- running diffusers' schedulers on pndmkit's problems (diffusers imported lazily).
* :mod:`pndmkit.studies.reports` -- tables, JSON, CSV/Markdown files and plots of those studies.

Import the submodule you need; this package imports none of them, so ``import pndmkit.studies`` stays cheap.
"""
