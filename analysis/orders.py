"""Convergence orders of every registered method: end-point error against the exact PF-ODE trajectory.

A thin writer around :mod:`pndmkit.studies.convergence` (the engine of ``pndmkit order``): its default
study (2-D mixture ``gmm2d``, linear VP, ``t``-uniform grid ending at ``s = 0.1``), every registered
method, the order fitted by :func:`pndmkit.studies.convergence.fit_order` on the asymptotic range it picks.
The adaptive ``pf`` is reported per NFE, over a range of tolerances.

Output JSON: ``pndmkit order --json``'s object (:func:`pndmkit.studies.reports.order_json`: ``problem``,
``schedule``, ``grid``, ``t_start``, ``t_end``, ``methods: {name: {declared_order, measured_order, steps, nfe,
errors, ...}}``) plus ``source``.

Run: ``python -m analysis.orders [--quick] [--out FILE]`` (default analysis/results/orders.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.tables import Log, stderr_log, study_main, write_json
from pndmkit.studies.convergence import DEFAULT_STEPS, make_study, run_study
from pndmkit.studies.reports import order_json

#: step counts of ``--quick`` (seconds)
QUICK_STEPS = [10, 20, 40, 80]


def study(quick: bool, log: Log) -> dict[str, Any]:
    """The default convergence study of ``pndmkit order`` as one JSON-ready object."""
    study = make_study("gmm2d", "linear-vp", batch=4 if quick else 8)
    results = run_study(study, steps=QUICK_STEPS if quick else list(DEFAULT_STEPS), progress=None)
    for name, res in results.items():
        order = res.measured_order
        log(f"    {name:15s} declared {res.declared_order}  measured {order if order is None else round(order, 2)}")
    return {**order_json(study, results), "source": "pndmkit.studies.convergence"}


def run(path: Path, quick: bool = False, log: Log = stderr_log) -> Path:
    return write_json(path, study(quick, log))


main = study_main(run, "orders.json", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
