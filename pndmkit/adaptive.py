r"""PF: the probability-flow ODE solved by an adaptive Runge-Kutta method (scipy ``solve_ivp``).

The paper's PF baseline (Song et al. 2021) integrates the probability-flow ODE in ``t`` with RK45 at
``rtol = atol = 1e-5``: ``dx/dt = c_x x + c_e eps`` with the schedule's
:meth:`~pndmkit.schedules.NoiseSchedule.ode_coefficients`, for every model family. Where that right-hand side
is singular at the end of the grid (``abar = 1`` of a VP schedule, e.g. a discrete schedule ending at
``t = -1``) the integration runs in the coordinates of docs/theory.md ("Coordinates: y, s and lambda")
instead, ``dy/ds = eps`` with ``y = x / alpha``, which describe the same trajectory and are regular there.

The state is flattened to one float64 numpy vector (a torch tensor is copied to the host and back; the
model still sees its own dtype and device), so PF is a reference-style baseline, not a fast sampler.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._backend import concatenate, from_host, read_only, to_host_float64
from pndmkit.models import CountedModel, Model
from pndmkit.run import Callback, Solution, call_back, call_model
from pndmkit.schedules import NoiseSchedule, VPSchedule

__all__ = ["AdaptiveIntegrator"]


@dataclass(frozen=True)
class AdaptiveIntegrator:
    """Adaptive solver of the probability-flow ODE.

    Parameters
    ----------
    schedule : NoiseSchedule
        Noise schedule.
    rtol, atol : float
        Tolerances of ``solve_ivp`` (1e-5 as score-SDE).
    solver : str
        ``solve_ivp`` method (``"RK45"``).
    variable : {"auto", "t", "s"}
        Integrate ``dx/dt`` in ``t`` or ``dy/ds = eps`` in ``s``; ``"auto"`` uses ``t`` unless the ODE in ``t``
        is singular at the end (``abar = 1``).
    name : str
        Name reported in the :class:`~pndmkit.integrator.Solution`.
    per_sample : bool
        Control the step size of every sample (entry of the first axis) on its own: each is integrated as a batch
        of one, so a sample does not depend on the batch it is drawn in (the model is then called with batches
        of one; ``nfe`` is the total over the samples). Default ``False``: one step-size control for the whole
        batch (one model call per stage for all samples), whose accepted steps, and so the samples, change
        slightly with the batch (by up to the tolerances).
    """

    schedule: NoiseSchedule
    rtol: float = 1e-5
    atol: float = 1e-5
    solver: str = "RK45"
    variable: str = "auto"
    name: str = "pf"
    per_sample: bool = False

    @property
    def kind(self) -> str:
        """``"adaptive"``: the method chooses its own steps."""
        return "adaptive"

    def solve(self, model: Model, x: Any, grid: Sequence[float] | NDArray[np.float64], *,
              callback: Callback | None = None, check_finite: bool = False, state: None = None) -> Solution:
        """Integrate from ``grid[0]`` to ``grid[-1]``; intermediate grid entries are ignored."""
        if state is not None:
            raise ValueError("an adaptive integrator cannot resume from a multistep state")
        if self.variable not in ("auto", "t", "s"):
            raise ValueError(f"variable must be 'auto', 't' or 's', got {self.variable!r}")
        if self.per_sample and len(x.shape) >= 1 and x.shape[0] > 1:
            parts = [dataclasses.replace(self, per_sample=False).solve(model, x[i:i + 1], grid,
                                                                       check_finite=check_finite)
                     for i in range(x.shape[0])]
            x_end = concatenate([p.x for p in parts])
            if callback is not None:
                call_back(callback, float(grid[-1]), x_end, None)
            times = max((p.times for p in parts), key=len)
            return Solution(x=x_end, nfe=sum(p.nfe for p in parts), times=times, method=self.name)
        sched = self.schedule
        from scipy.integrate import solve_ivp  # not at import: `import pndmkit` stays light

        t0, t1 = float(grid[0]), float(grid[-1])
        g = CountedModel(model, x, check_finite)
        shape = tuple(x.shape)
        variable = self.variable
        if variable == "auto":
            variable = "t" if _regular(sched, t1) else "s"

        def eps(v: NDArray[np.float64], t: float) -> NDArray[np.float64]:
            # the model sees a read-only x (it may be a view of the solver's state) and its output is copied:
            # scipy keeps the array as a stage, and a model may return one buffer it overwrites every call
            return to_host_float64(call_model(g, read_only(from_host(v.reshape(shape), x)), t), copy=True).ravel()

        x0 = to_host_float64(x, copy=True).ravel()
        if variable == "t":
            def rhs(t, v):
                c_x, c_e = sched.ode_coefficients(t)
                return c_x * v + c_e * eps(v, t)

            sol = solve_ivp(rhs, (t0, t1), x0, method=self.solver, rtol=self.rtol, atol=self.atol)
            end, ts = sol.y[:, -1], sol.t
        else:
            y_per_x = _y_per_x(sched)

            def rhs(s, y):
                t = float(sched.t_from_s(max(s, 0.0)))
                return eps(y / y_per_x(s, t), t)

            s0, s1 = float(sched.s(t0)), float(sched.s(t1))
            sol = solve_ivp(rhs, (s0, s1), x0 * y_per_x(s0, t0), method=self.solver,
                            rtol=self.rtol, atol=self.atol)
            end, ts = sol.y[:, -1] / y_per_x(s1, t1), np.asarray(sched.t_from_s(np.maximum(sol.t, 0)))
        if sol.status != 0:
            raise RuntimeError(f"{self.solver} failed after {g.nfe} evaluations: {sol.message}")
        x_end = from_host(end.reshape(shape), x)
        if callback is not None:
            call_back(callback, t1, x_end, None)
        return Solution(x=x_end, nfe=g.nfe, times=np.asarray(ts, dtype=np.float64), method=self.name)


def _regular(schedule: NoiseSchedule, t: float) -> bool:
    """Whether the probability-flow ODE in ``t`` has a finite right-hand side at ``t``."""
    try:
        return all(math.isfinite(c) for c in schedule.ode_coefficients(t))
    except ValueError:
        return False


def _y_per_x(schedule: NoiseSchedule) -> Any:
    """``(s, t) -> 1 / alpha(t)``, the factor of ``y = x / alpha`` (VP: ``sqrt(1 + s^2)``, from ``s`` alone)."""
    if isinstance(schedule, VPSchedule):
        return lambda s, t: math.sqrt(1.0 + s * s)  # alpha = sqrt(abar), abar = 1 / (1 + s^2)
    return lambda s, t: 1.0 / float(schedule.alpha(t))
