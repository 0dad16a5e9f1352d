"""Which gradient should a higher-order method combine on a flow-matching model: eps in s, x0 in e^lambda or u in t?

Each transfer is exact Euler in its own variable (docs/theory.md, "One ODE for every model family"): the DDIM
transfer on the eps estimate in ``s = t / (1 - t)``, the data transfer on the x0 estimate in ``e^lambda = 1/s``,
the linear transfer on the velocity ``u = eps - x0`` in ``t`` (the flow-matching Euler step). One gradient part
(PRK, PLMS, F-PNDM, iPNDM, PECE; stages and exact weights placed in the transfer's own variable, fixed weights
as published) is combined with each of the three, on the 2-D mixture ``gmm2d`` diffused by
``FlowMatching()``:

* **order**: the registry study moved to flow matching (``t``-uniform grid from ``s = 6.4`` to ``s = 0.1``,
  N = 100..800; ``tests/test_families.py``);
* **error per NFE**: from pure noise ``t = 0.999`` to the data ``t = 0``, on the flow-matching default grid
  (``t``-uniform, diffusers' ``FlowMatchEulerDiscreteScheduler`` with ``shift = 1``), RMS end-point error
  against the exact trajectory at about 10, 20, 40 and 100 model evaluations: the largest step count whose
  registry count fits each target, and in parentheses the NFE the run actually used (from 5 at the ~10 target:
  a four-evaluation Runge-Kutta step, and runs of the data transfer that need fewer evaluations).

Run: ``python -m analysis.flow_gradients`` (about 11 CPU-seconds; 40 s wall on a loaded 2-core machine); prints
the markdown table of README.md (``tests/test_readme_numbers.py`` checks it).
"""

from __future__ import annotations

import sys
from typing import Callable

from pndmkit.adams import AdamsPC, LinearMultistep
from pndmkit.estimators import GradientEstimator, Warmup
from pndmkit.runge_kutta import RungeKutta
from pndmkit.integrator import Integrator
from pndmkit.methods import MethodSpec
from pndmkit.schedules import CosineVP, FlowMatching
from pndmkit.studies.convergence import make_study, sweep
from pndmkit.tableaus import HEUN, RK4
from pndmkit.transfers import DataTransfer, DDIMTransfer, LinearTransfer

#: gradient part -> factory; "native" places stages and exact weights in the transfer's own variable
ESTIMATORS: dict[str, Callable[[], GradientEstimator]] = {
    "PRK": lambda: RungeKutta(RK4, variable="native"),
    "PLMS": lambda: LinearMultistep(4, warmup=RungeKutta(HEUN, variable="native"), warmup_steps=1, ramp=True),
    "F-PNDM": lambda: Warmup(RungeKutta(RK4, variable="native"), 3, LinearMultistep(4, weights="exact", ramp=False)),
    "iPNDM": lambda: LinearMultistep(4, ramp=True),
    "PECE": lambda: Warmup(RungeKutta(RK4, variable="native"), 2, AdamsPC(4, "PECE", ramp=False)),
}
#: gradient -> transfer
GRADIENTS = {"eps in s": DDIMTransfer, "x0 in e^lambda": DataTransfer, "u in t": LinearTransfer}
#: target NFE of the error-per-NFE columns
NFES = (10, 20, 40, 100)


#: gradient -> the part of a method name that says it (names must be registry names: lower case, no spaces)
SLUGS = {"eps in s": "eps-s", "x0 in e^lambda": "x0-lambda", "u in t": "u-t"}


def name(method: str, gradient: str) -> str:
    """The method name of a table row (``"PRK", "eps in s"`` -> ``"prk.eps-s"``); the table prints the labels."""
    return f"{method.lower()}.{SLUGS[gradient]}"


def spec(method: str, gradient: str) -> MethodSpec:
    """An unregistered method: the gradient part of ``method`` with the transfer of ``gradient``."""
    def build(schedule):
        return Integrator(ESTIMATORS[method](), GRADIENTS[gradient](schedule), name(method, gradient))

    probe = build(FlowMatching())
    return MethodSpec(name(method, gradient), build, probe.estimator.order(probe.transfer))


def steps_for(s: MethodSpec, nfe: int) -> int:
    """The largest step count whose NFE does not exceed ``nfe`` (at least 1)."""
    n = 1
    while s.nfe(n + 1) <= nfe:
        n += 1
    return n


def main() -> None:
    fm = FlowMatching()
    s0 = float(CosineVP().s(0.9))
    order_study = make_study("gmm2d", fm, t_start=float(fm.t_from_s(s0)), batch=4)
    nfe_study = make_study("gmm2d", fm, t_end=0.0, batch=8)
    head = "| method | gradient | order | " + " | ".join(f"error (NFE) @ NFE ~{n}" for n in NFES) + " |"
    print(head)
    print("|" + "---|" * (3 + len(NFES)))
    for method in ESTIMATORS:
        for gradient in GRADIENTS:
            s = spec(method, gradient)
            order = sweep(order_study, s, [100, 200, 400, 800]).measured_order
            steps = sorted({steps_for(s, n) for n in NFES})
            res = sweep(nfe_study, s, steps)
            cells = " | ".join(f"{e:.2e} ({k})" for k, e in zip(res.nfe, res.errors))
            print(f"| {method} | {gradient} | {order} | {cells} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
